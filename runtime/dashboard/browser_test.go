package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
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

// page is the dashboard in a headless Chromium tab, with the console
// errors and exceptions it has had.
type page struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	// errs are console errors and uncaught exceptions. The browser's own
	// network messages (a refused connection while the aggregator
	// restarts) are not the page's and are not listed.
	errs []string
}

// openPage opens url in Debian's chromium, skipping the test where it is
// missing. The browser lives until the test ends.
func openPage(t *testing.T, url string) *page {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a job and a browser")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it): the page is not tested in a browser")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	actx, cancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	p := &page{t: t, ctx: bctx}
	if err := chromedp.Listen(bctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			p.errs = append(p.errs, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				p.errs = append(p.errs, fmt.Sprintf("console.error %v", ev.Args))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	return p
}

// text is the text of the element sel ("" when there is none).
func (p *page) text(sel string) string {
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
	if err != nil {
		p.t.Fatalf("%s: %v", sel, err)
	}
	return s
}

var recorded = regexp.MustCompile(`(\d+) rounds recorded`)

// rounds is how many rounds the page says it holds.
func (p *page) rounds() int {
	m := recorded.FindStringSubmatch(p.text("#status"))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// canvases counts the accuracy chart's canvases.
func (p *page) canvases() int {
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#acc canvas").length`))
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// until looks at the page (it polls the job every 2 s) until ok says so,
// failing with what it shows when ctx ends first.
func (p *page) until(ctx context.Context, what string, ok func() bool) {
	p.t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			defer p.mu.Unlock()
			p.t.Fatalf("the page never showed %s: job %q, status %q, summary %q, executors %q; console errors: %q",
				what, p.text("#job"), p.text("#status"), p.text("#summary"), p.text("#executors"), p.errs)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// noErrors fails the test on any console error the page had.
func (p *page) noErrors() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		p.t.Errorf("console errors: %s", strings.Join(p.errs, "\n"))
	}
}

// TestPageInBrowser is the page in headless Chromium against a real job
// (an aggregator and two executors in this process): it loads with no
// console error, its curve gains points as rounds end, an executor that
// goes away shows as lost, and the job still completes and shows so.
func TestPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a job and a browser")
	}
	c, ds := jobData(t, t.TempDir(), "browser", jobtest.SynthOptions{Clients: 12, PerClient: 20, Test: 60, Classes: 4, Seed: 5})
	c.NumParticipants, c.Rounds, c.EvalInterval, c.LocalSteps, c.BatchSize = 4, 25, 1, 2, 10
	jobCtx, stopJob := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stopJob()
	a := startAggr(t, jobCtx, c, 2, "127.0.0.1:0", "127.0.0.1:0")
	p := openPage(t, "http://"+a.hs.Addr()+"/")

	// The page is up before the job starts: it shows the aggregator
	// waiting for its executors.
	p.until(jobCtx, "the job waiting", func() bool { return strings.HasPrefix(p.text("#summary"), "waiting") })
	var kill [3]context.CancelFunc
	var execs []<-chan error
	for rank := 1; rank <= 2; rank++ {
		ctx, cancel := context.WithCancel(jobCtx)
		kill[rank] = cancel
		execs = append(execs, startExecutor(t, ctx, a.c, ds, rank, slow))
	}
	defer func() {
		stopJob()
		for _, e := range execs {
			<-e
		}
	}()
	p.until(jobCtx, "a round", func() bool { return p.rounds() >= 2 })
	if p.canvases() != 1 {
		t.Errorf("the accuracy chart has no canvas")
	}
	first := p.rounds()
	p.until(jobCtx, "a new round", func() bool { return p.rounds() > first })

	kill[2]() // executor 2 goes away mid-job
	p.until(jobCtx, "executor 2 lost", func() bool { return strings.Contains(p.text("#executors tbody tr:nth-child(2)"), "lost") })
	select {
	case <-a.done:
		if a.err != nil {
			t.Fatalf("job: %v", a.err)
		}
	case <-jobCtx.Done():
		t.Fatal("the job did not complete without executor 2")
	}
	p.until(jobCtx, "the job finished", func() bool { return strings.HasPrefix(p.text("#summary"), "finished") && p.rounds() == c.Rounds+1 })
	p.noErrors()
}

// TestPageAcrossRestart: the page keeps working across an aggregator
// stopped mid-job and started again on the same ports, resuming from its
// checkpoint (as a restarted container or pod does): while it is away the
// page says it cannot reach it and retries; then it shows the new run,
// has every round up to the checkpoint, gains the resumed rounds and
// shows the job finished with every round once, also when loaded again,
// with no console error.
func TestPageAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a job and a browser")
	}
	c, ds := jobData(t, t.TempDir(), "restart", jobtest.SynthOptions{Clients: 12, PerClient: 20, Test: 60, Classes: 4, Seed: 5})
	c.NumParticipants, c.Rounds, c.EvalInterval, c.LocalSteps, c.BatchSize, c.SaveCheckpoint = 4, 16, 1, 2, 10, true
	jobCtx, stopJob := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stopJob()
	first := startAggr(t, jobCtx, c, 2, "127.0.0.1:0", "127.0.0.1:0")
	httpAddr, grpcAddr := first.hs.Addr(), net.JoinHostPort(first.c.PsIP, strconv.Itoa(first.c.PsPort))
	p := openPage(t, "http://"+httpAddr+"/")

	// The executors outlive the first aggregator and reconnect to the
	// second on their own.
	var execs []<-chan error
	for rank := 1; rank <= 2; rank++ {
		execs = append(execs, startExecutor(t, jobCtx, first.c, ds, rank, slow))
	}
	defer func() {
		stopJob()
		for _, e := range execs {
			<-e
		}
	}()
	p.until(jobCtx, "rounds of the first run", func() bool { return p.rounds() >= 4 })
	if !strings.Contains(p.text("#job"), "(run1)") {
		t.Errorf("job heading %q, want the first run's time stamp", p.text("#job"))
	}
	seen := p.rounds() // rounds 0..seen-1, each checkpointed before it was published
	first.close()
	p.until(jobCtx, "the aggregator unreachable", func() bool { return strings.Contains(p.text("#status"), "cannot reach the aggregator") })
	shown := p.rounds() // what the page kept from the first run

	c.TimeStamp = "run2"
	second := startAggr(t, jobCtx, c, 2, grpcAddr, httpAddr)
	p.until(jobCtx, "the second run", func() bool { return strings.Contains(p.text("#job"), "(run2)") })
	p.until(jobCtx, "a resumed round", func() bool { return p.rounds() > shown })
	select {
	case <-second.done:
		if second.err != nil {
			t.Fatalf("second run: %v", second.err)
		}
	case <-jobCtx.Done():
		t.Fatal("the resumed job did not complete")
	}
	resumed, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`fetch("api/v1/job").then(r => r.json()).then(d => d.resumed_at)`,
		chromedp.EvalAwaitPromise))
	if err != nil || resumed < seen-1 {
		t.Fatalf("the second run resumed after round %d (%v), want after round %d at least (the page showed it)", resumed, err, seen-1)
	}
	// Every round once: the first run's up to the checkpoint, then the
	// second's (round 0 is the initial model's evaluation). The page had
	// not necessarily read the first run's last rounds before it stopped:
	// the second run's document starts with them.
	t.Logf("the page had %d rounds when the first run stopped; the second resumed after round %d", shown, resumed)
	finished := func() bool { return strings.HasPrefix(p.text("#summary"), "finished") && p.rounds() == c.Rounds+1 }
	p.until(jobCtx, "the job finished with every round", finished)
	// A page opened after the restart draws them all too.
	if err := chromedp.Do(p.ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	p.until(jobCtx, "every round after a reload", finished)
	p.noErrors()
}
