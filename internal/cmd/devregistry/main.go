// Command devregistry serves an OCI registry for `make release-dryrun`:
// go-containerregistry's pkg/registry (blobs in memory, or in --blobs DIR;
// the referrers API on, as Docker Hub has it), on 127.0.0.1 only. Once it
// listens it writes its host:port to --addr-file, so a script can wait for
// the file instead of polling the port. It stops on SIGINT or SIGTERM.
//
//	devregistry --addr-file /tmp/reg.addr &   # then: ADDR=$(cat /tmp/reg.addr)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	addrFile := flag.String("addr-file", "", "write host:port here once listening (atomically)")
	blobs := flag.String("blobs", "", "keep blobs in this folder instead of memory")
	verbose := flag.Bool("v", false, "log every request to stderr")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "devregistry: no arguments expected")
		os.Exit(2)
	}
	if err := run(*listen, *addrFile, *blobs, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "devregistry:", err)
		os.Exit(1)
	}
}

func run(listen, addrFile, blobs string, verbose bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logTo := io.Discard
	if verbose {
		logTo = os.Stderr
	}
	opts := []registry.Option{registry.WithReferrersSupport(true), registry.Logger(log.New(logTo, "devregistry: ", log.LstdFlags))}
	if blobs != "" {
		if err := os.MkdirAll(blobs, 0o755); err != nil {
			return err
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs)))
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: registry.New(opts...), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	if addrFile != "" {
		tmp := filepath.Join(filepath.Dir(addrFile), "."+filepath.Base(addrFile)+".tmp")
		if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "devregistry: serving on %s\n", addr)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
