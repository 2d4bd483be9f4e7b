package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/dashboard"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// slowTrainer is the real trainer, slowed so that a round lasts long
// enough for the page to be watched between rounds.
type slowTrainer struct{ model.Trainer }

func (s slowTrainer) Train(p tensor.List, b []model.Batch, o model.SGD) (model.TrainStats, error) {
	time.Sleep(200 * time.Millisecond)
	return s.Trainer.Train(p, b, o)
}

func slow(spec model.Spec) (model.Trainer, error) {
	tr, err := cpu.New(spec)
	if err != nil {
		return nil, err
	}
	return slowTrainer{tr}, nil
}

// TestPageInBrowser is the page in headless Chromium against a real job
// (an aggregator and two executors in this process): it loads with no
// console error, its curve gains points as rounds end, an executor that
// goes away shows as lost, and the job still completes and shows so.
func TestPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a job and a browser")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it): the page is not tested in a browser")
	}
	dir := t.TempDir()
	if err := jobtest.WriteSynthetic(filepath.Join(dir, "data"), jobtest.SynthOptions{Clients: 12, PerClient: 20, Test: 60, Classes: 4, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(filepath.Join(dir, "data"), "")
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.JobName, c.LogPath, c.TimeStamp, c.DataDir, c.GreyInput = "browser", dir, "run1", filepath.Join(dir, "data"), true
	c.Model, c.NumParticipants, c.Rounds, c.EvalInterval, c.LocalSteps, c.BatchSize, c.FilterLess, c.TestBsz, c.UseCuda =
		"logistic", 4, 25, 1, 2, 10, 10, 20, false
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.PsIP, c.PsPort = "127.0.0.1", lis.Addr().(*net.TCPAddr).Port
	agg, err := aggregator.New(aggregator.Options{Conf: c, Executors: 2, ExecutorTimeout: 3 * time.Second, Log: fedlog.New(discard{})})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(pb.MaxMessageBytes), grpc.MaxSendMsgSize(pb.MaxMessageBytes))
	pb.RegisterAggregatorServer(srv, agg)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	routes := []health.Route{{Pattern: jobapi.Path, Handler: agg.JobHandler()}}
	for _, p := range dashboard.Patterns {
		routes = append(routes, health.Route{Pattern: p, Handler: dashboard.Handler()})
	}
	hs, err := health.Listen("127.0.0.1:0", nil, routes...)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()

	jobCtx, stopJob := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stopJob()
	jobErr := make(chan error, 1)
	go func() { _, err := agg.Run(jobCtx); jobErr <- err }()

	// The browser outlives the job's context, to say what it shows when
	// the job does not get there.
	browserCtx, stopBrowser := context.WithTimeout(context.Background(), 5*time.Minute)
	defer stopBrowser()
	actx, cancel := chromedp.NewExecAllocator(browserCtx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	var mu sync.Mutex
	var consoleErrs []string
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			consoleErrs = append(consoleErrs, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				consoleErrs = append(consoleErrs, fmt.Sprintf("console.error %v", ev.Args))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+hs.Addr()+"/")); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	// until polls the page (it polls the job every 2 s) until ok says so.
	until := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			select {
			case <-jobCtx.Done():
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("the page never showed %s: status %q, summary %q, executors %q; console errors: %q",
					what, text("#status"), text("#summary"), text("#executors"), consoleErrs)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	recorded := regexp.MustCompile(`(\d+) rounds recorded`)
	rounds := func() int {
		m := recorded.FindStringSubmatch(text("#status"))
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	points := func() int { // the accuracy chart's canvases
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#acc canvas").length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The page is up before the job starts: it shows the aggregator
	// waiting for its executors.
	until("the job waiting", func() bool { return strings.HasPrefix(text("#summary"), "waiting") })
	var kill [3]context.CancelFunc
	var wg sync.WaitGroup
	for rank := 1; rank <= 2; rank++ {
		ex, err := executor.New(executor.Options{Conf: c, Rank: rank, Slots: 1, Backend: slow, Data: ds, Log: fedlog.New(discard{}), ConnectTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(jobCtx)
		kill[rank] = cancel
		wg.Add(1)
		go func() { defer wg.Done(); _ = ex.Run(ctx) }()
	}
	defer func() { stopJob(); wg.Wait() }()
	until("a round", func() bool { return rounds() >= 2 })
	if points() != 1 {
		t.Errorf("the accuracy chart has no canvas")
	}
	first := rounds()
	until("a new round", func() bool { return rounds() > first })

	kill[2]() // executor 2 goes away mid-job
	until("executor 2 lost", func() bool { return strings.Contains(text("#executors tbody tr:nth-child(2)"), "lost") })
	select {
	case err := <-jobErr:
		if err != nil {
			t.Fatalf("job: %v", err)
		}
	case <-jobCtx.Done():
		t.Fatal("the job did not complete without executor 2")
	}
	until("the job finished", func() bool { return strings.HasPrefix(text("#summary"), "finished") && rounds() == c.Rounds+1 })
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrs) > 0 {
		t.Errorf("console errors: %s", strings.Join(consoleErrs, "\n"))
	}
}
