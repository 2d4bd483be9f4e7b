// Command verifyimages pulls back what a release pushed and checks it (see
// release.Verify): it reads fsbuild --print-digest output (REF@DIGEST lines)
// from the files named, or stdin, and fails unless every line is a tag
// resolving to its digest, an OCI index of exactly linux/amd64 and
// linux/arm64 with provenance and SBOM referrers, and the set is complete
// (both images, CPU and CUDA).
//
//	verifyimages --cuda-base "$BASE" build/release-dryrun/digests.txt
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fedscale/fedscale-go/internal/release"
)

func main() {
	cudaBase := flag.String("cuda-base", "", "NAME@DIGEST every CUDA image must have been built on")
	insecure := flag.Bool("insecure", false, "plain HTTP to the registry (loopback registries are plain HTTP anyway)")
	platforms := flag.String("platform", strings.Join(release.ReleasePlatforms, ","), "the exact platforms of every index")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: verifyimages [flags] [DIGEST-FILE...]   (stdin without files)")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var refs []string
	read := func(r io.Reader, what string) {
		got, err := release.ReadDigests(r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "verifyimages: %s: %v\n", what, err)
			os.Exit(1)
		}
		refs = append(refs, got...)
	}
	if flag.NArg() == 0 {
		read(os.Stdin, "stdin")
	}
	for _, p := range flag.Args() {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "verifyimages:", err)
			os.Exit(1)
		}
		read(f, p)
		f.Close()
	}
	if len(refs) == 0 {
		fmt.Fprintln(os.Stderr, "verifyimages: no REF@DIGEST lines")
		os.Exit(1)
	}
	checked, err := release.Verify(ctx, refs, release.Want{
		Platforms: strings.Split(*platforms, ","),
		CUDABase:  *cudaBase,
		Insecure:  *insecure,
	})
	for _, c := range checked {
		fmt.Printf("ok  %-8s %-13s %s  [%s; %d referrers]\n", c.Variant, c.Image, c.Ref, strings.Join(c.Platforms, " "), c.Referrers)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifyimages: FAILED:\n"+err.Error())
		os.Exit(1)
	}
	fmt.Printf("verified %d images\n", len(checked))
}
