// Command standinbase pushes a small two-platform (linux/amd64, linux/arm64)
// image that stands in for nvidia/cuda:12.4.1-runtime to a registry and
// prints its reference by digest, for fsbuild --cuda 12.4 --base REF where
// Docker Hub cannot be reached (`make release-dryrun`).
//
//	BASE=$(standinbase --registry 127.0.0.1:5000)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fedscale/fedscale-go/internal/standin"
)

func main() {
	reg := flag.String("registry", "", "registry host:port to push to (plain HTTP on loopback)")
	flag.Parse()
	if *reg == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: standinbase --registry HOST:PORT")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ref, err := standin.Push(ctx, *reg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standinbase:", err)
		os.Exit(1)
	}
	fmt.Println(ref)
}
