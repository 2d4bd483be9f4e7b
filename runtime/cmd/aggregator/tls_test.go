package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/mtls"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// A job over mutual TLS on the real binaries: the holder of rank 1's
// certificate cannot register as rank 2, a certificate of another job's CA
// and a plain-text executor are refused at the handshake, and the
// executors holding their own certificates then run the whole job.
func TestMutualTLSJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := buildBinaries(t)
	home, conf := synthHome(t, jobtest.SynthOptions{Clients: 20, PerClient: 30, Test: 100, Classes: 4, Seed: 3}, 3)
	issue := func(name string) string {
		b, err := mtls.Issue(name, []string{"127.0.0.1", "localhost"}, 2, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "tls")
		if err := b.Write(dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, other := issue("processes"), issue("someone-else")
	port := fmt.Sprint(freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// No TLS material and no --insecure: a clear refusal, nothing started.
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "aggregator"), "--config", conf, "--ps-port", port, "--http-port", "0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no TLS material") {
		t.Fatalf("aggregator without TLS files or --insecure: %v\n%s", err, out)
	}
	// Another rank's certificate is refused by the executor itself.
	out, err = exec.CommandContext(ctx, filepath.Join(bin, "executor"), "--config", conf, "--rank", "2", "--ps-port", port, "--http-port", "0",
		"--tls-ca", filepath.Join(dir, "ca.crt"), "--tls-cert", filepath.Join(dir, "executor-1.crt"), "--tls-key", filepath.Join(dir, "executor-1.key")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "issued to rank 1, this process is rank 2") {
		t.Fatalf("executor 2 with rank 1's certificate: %v\n%s", err, out)
	}

	var aggOut bytes.Buffer
	agg := exec.CommandContext(ctx, filepath.Join(bin, "aggregator"), "--config", conf, "--ps-port", port, "--http-port", "0",
		"--tls-dir", dir, "--time-stamp", "tls")
	agg.Stderr = &aggOut
	if err := agg.Start(); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port

	// A hostile client holding rank 1's certificate says Hello as rank 2.
	if code := hello(t, addr, clientTLS(t, dir, "executor-1"), 2); code != codes.PermissionDenied {
		t.Errorf("Hello for rank 2 with rank 1's certificate: got %v, want PermissionDenied\n%s", code, aggOut.String())
	}
	// Another job's CA: the handshake fails.
	if code := hello(t, addr, clientTLS(t, other, "executor-2"), 2); code != codes.Unavailable {
		t.Errorf("certificate of another CA: got %v, want Unavailable (refused handshake)", code)
	}
	// No client certificate at all.
	noCert := clientTLS(t, dir, "executor-1")
	noCert.Certificates = nil
	if code := hello(t, addr, noCert, 1); code != codes.Unavailable {
		t.Errorf("no client certificate: got %v, want Unavailable (refused handshake)", code)
	}
	// A plain-text executor never gets through.
	out, err = exec.CommandContext(ctx, filepath.Join(bin, "executor"), "--config", conf, "--rank", "2", "--ps-port", port, "--http-port", "0",
		"--insecure", "--connect-timeout", "2s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unreachable") {
		t.Errorf("plain-text executor against a TLS aggregator: %v\n%s", err, out)
	}

	var execs []*exec.Cmd
	for rank := 1; rank <= 2; rank++ {
		e := exec.CommandContext(ctx, filepath.Join(bin, "executor"), "--config", conf, "--rank", fmt.Sprint(rank), "--ps-port", port, "--http-port", "0", "--tls-dir", dir)
		e.Stderr = &bytes.Buffer{}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		execs = append(execs, e)
	}
	if err := agg.Wait(); err != nil {
		t.Fatalf("aggregator: %v\n%s", err, aggOut.String())
	}
	for i, e := range execs {
		if err := e.Wait(); err != nil {
			t.Errorf("executor %d: %v\n%s", i+1, err, e.Stderr)
		}
	}
	if !strings.Contains(aggOut.String(), "Refused a Hello for executor 2 from the holder of rank 1's certificate") {
		t.Errorf("the impersonation is not in the aggregator's log:\n%s", aggOut.String())
	}
	log, err := os.ReadFile(filepath.Join(home, "benchmark", "logs", "processes", "tls", "aggregator", "log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "FL Testing in round: 3,") {
		t.Errorf("the job did not finish over TLS:\n%s", log)
	}
}

// clientTLS is a TLS client configuration from a TLS folder's files, made
// by hand so a test can present any certificate for any rank.
func clientTLS(t *testing.T, dir, name string) *tls.Config {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(dir, mtls.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
}

// hello opens a session with cfg, says Hello as rank and returns the
// status code the aggregator ends it with.
func hello(t *testing.T, addr string, cfg *tls.Config, rank int32) codes.Code {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The aggregator may still be starting: wait for its port, then call
	// without waiting for readiness, so a refused handshake fails the call.
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("aggregator never listened on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stream, err := pb.NewAggregatorClient(conn).Session(ctx)
	if err != nil {
		return status.Code(err)
	}
	if err := stream.Send(&pb.ExecutorMessage{Body: &pb.ExecutorMessage_Hello{Hello: &pb.Hello{Rank: rank, ProtocolVersion: pb.ProtocolVersion}}}); err != nil && !errors.Is(err, context.Canceled) {
		_, err = stream.Recv()
		return status.Code(err)
	}
	_, err = stream.Recv()
	return status.Code(err)
}
