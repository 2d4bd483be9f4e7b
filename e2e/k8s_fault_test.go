package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fedscale/fedscale-go/internal/devinfra"
	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/internal/kubetest"
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/k8s"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/results"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

// nodeLauncher runs the launcher on the real node's namespace as a
// ServiceAccount with rbac.yaml's Role alone.
type nodeLauncher struct {
	s    *suite
	kc   string // the launcher's kubeconfig
	args []string
}

func newNodeLauncher(t *testing.T, s *suite, adminKC string) nodeLauncher {
	kc := kubetest.As(t, adminKC, realNodeNamespace, k8s.RBAC, nil)
	return nodeLauncher{s: s, kc: kc, args: []string{"--backend", "k8s", "--kubeconfig", kc, "-n", realNodeNamespace}}
}

// run runs one launcher command; a failure carries its output.
func (l nodeLauncher) run(ctx context.Context, args ...string) (string, error) {
	out, errOut, err := l.s.launcherCmd(ctx, append(l.args, args...)...)
	if err != nil {
		return out, fmt.Errorf("launcher %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, tail(out, 30), errOut)
	}
	return out, nil
}

// status is `launcher status -o json`.
func (l nodeLauncher) status(ctx context.Context, name string) (backend.Status, error) {
	var st backend.Status
	out, err := l.run(ctx, "status", "-o", "json", name)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("status -o json: %v\n%s", err, out)
	}
	return st, nil
}

// stopOnCleanup stops job name at the end of the test unless *stopped,
// showing its pods first if the test failed.
func stopOnCleanup(t *testing.T, l nodeLauncher, cs kubernetes.Interface, name string, stopped *bool) {
	t.Cleanup(func() {
		if *stopped {
			return
		}
		if t.Failed() {
			showPods(t, cs, name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := l.run(ctx, "stop", name); err != nil && !strings.Contains(err.Error(), "no such job") {
			t.Errorf("cleanup: %v %s", err, out)
		}
	})
}

// pollUntil calls f every half second until it says done or ctx ends (a
// hang guard, never a timing assertion).
func pollUntil(ctx context.Context, what string, f func() (bool, error)) error {
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// podOf is the newest pod of one process of job name (rank 0 the
// aggregator), nil if it has none.
func podOf(ctx context.Context, cs kubernetes.Interface, name string, rank int) (*corev1.Pod, error) {
	pl, err := cs.CoreV1().Pods(realNodeNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: job.LabelJob + "=" + name + "," + job.LabelRank + "=" + strconv.Itoa(rank)})
	if err != nil {
		return nil, err
	}
	var p *corev1.Pod
	for i := range pl.Items {
		q := &pl.Items[i]
		if p == nil || p.CreationTimestamp.Before(&q.CreationTimestamp) {
			p = q
		}
	}
	return p, nil
}

func podReady(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// deletePod deletes the current pod of rank (0 the aggregator) of job
// name, as `kubectl delete pod` does, and returns it.
func deletePod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, rank int) *corev1.Pod {
	t.Helper()
	p, err := podOf(ctx, cs, name, rank)
	if err != nil || p == nil {
		t.Fatalf("no pod of rank %d: %v", rank, err)
	}
	if err := cs.CoreV1().Pods(realNodeNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting pod %s: %v", p.Name, err)
	}
	t.Logf("pod %s deleted", p.Name)
	return p
}

// waitReplaced waits until a pod of rank other than old runs and is
// ready, and returns it.
func waitReplaced(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, rank int, old *corev1.Pod) *corev1.Pod {
	t.Helper()
	t0 := time.Now()
	var cur *corev1.Pod
	if err := pollUntil(ctx, "a ready replacement of pod "+old.Name, func() (bool, error) {
		var err error
		cur, err = podOf(ctx, cs, name, rank)
		return cur != nil && cur.UID != old.UID && podReady(cur), err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("pod %s replaced by %s, ready %.1f s later", old.Name, cur.Name, time.Since(t0).Seconds())
	return cur
}

// TestLauncherKubernetesFaults runs one job of real pods on the real node
// through everything that happens to a running job, as a ServiceAccount
// with rbac.yaml alone: `launcher status` of the running job shows the
// round and top-1 read through the API server's service proxy; executor
// 2's pod deleted mid-round is replaced by its Job and rejoins; the
// aggregator's pod deleted after a checkpoint is replaced and resumes from
// the checkpoint in data_path on the node; `launcher logs -f` started then
// follows the job to its end and exits 0 by itself; the job Succeeds with
// every round in metrics.jsonl once; `launcher results` of the ended job
// reads the replacement aggregator's log; `launcher logs -f` of the ended
// job prints and exits; stop leaves nothing.
func TestLauncherKubernetesFaults(t *testing.T) {
	s := need(t)
	infratest.Node(t)
	kc := infratest.Kube(t)
	if s.node == "" {
		t.Fatal("the real node runs but setup imported no image into it")
	}
	ctx := ctxFor(t, 8*time.Minute)
	name := s.jobName("nodefault")
	// mlp rounds of about a second here: the job outlasts the Job
	// controller's replacement of two pods (about 10-15 s).
	const rounds = 30
	c := nodeConf{model: "mlp", rounds: rounds, localSteps: 50, checkpoint: true}
	dataPath := nodeData(t, s, name)
	file := filepath.Join(t.TempDir(), "conf_k8s.yml")
	if err := os.WriteFile(file, confK8s(s, name, dataPath, c), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newNodeLauncher(t, s, kc)
	cs := clientset(t, kc)
	stopped := false
	stopOnCleanup(t, l, cs, name, &stopped)
	logDir := filepath.Join(dataPath, "logs", name, timeStamp)
	aggLog := func() string {
		b, _ := os.ReadFile(filepath.Join(logDir, "aggregator", "log"))
		return string(b)
	}

	t0 := time.Now()
	if _, err := l.run(ctx, "submit", "--wait", file); err != nil {
		t.Fatal(err)
	}
	t.Logf("submit --wait (every pod ready): %.1f s", time.Since(t0).Seconds())
	// logs -f from the start follows each process into its replacement.
	early := l.startFollow(ctx, name)

	// Status of the running job: the round and top-1 through the proxy.
	var st backend.Status
	if err := pollUntil(ctx, "status with a round and a top-1", func() (bool, error) {
		var err error
		st, err = l.status(ctx, name)
		if err != nil || st.Phase != backend.Running {
			return false, err
		}
		return st.Round != nil && *st.Round >= 1 && st.Accuracy != nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if *st.Round >= rounds || st.Rounds == nil || *st.Rounds != rounds || *st.Accuracy <= 0 || *st.Accuracy > 1 {
		t.Errorf("status of the running job: round %d of %v (want %d), top-1 %v", *st.Round, st.Rounds, rounds, *st.Accuracy)
	}
	out, err := l.run(ctx, "status", name)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`: Running, round \d+/` + strconv.Itoa(rounds) + `, top-1 0\.\d{4}`).MatchString(out) {
		t.Errorf("launcher status of the running job shows no round and top-1:\n%s", out)
	}
	t.Logf("status while running: round %d/%d, top-1 %.4f", *st.Round, *st.Rounds, *st.Accuracy)

	// Executor 2's pod deleted while the job trains: the aggregator
	// re-issues its task (if it held one: the gaps between tasks are
	// microseconds, but the aggregator's line is not asserted). Then, before its replacement comes (the Job
	// controller waits about 10 s after a failure), the aggregator's pod,
	// after a checkpoint: its replacement resumes from it (under
	// data_path on the node). Both replacements overlap.
	lostRE := regexp.MustCompile(`Executor 2 lost \(.*`)
	ckRE := regexp.MustCompile(`Saved checkpoint of round (\d+) to `)
	oldExec := deletePod(ctx, t, cs, name, 2)
	if err := pollUntil(ctx, "the aggregator losing executor 2", func() (bool, error) {
		return lostRE.MatchString(aggLog()) && ckRE.MatchString(aggLog()), nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("aggregator: %s", lostRE.FindString(aggLog()))
	oldAgg := deletePod(ctx, t, cs, name, 0)
	agg := waitReplaced(ctx, t, cs, name, 0, oldAgg)
	resumedRE := regexp.MustCompile(`Resumed job ` + regexp.QuoteMeta(name) + ` from checkpoint after round (\d+) `)
	var resumedAt int
	if err := pollUntil(ctx, "the resumed aggregator's log line", func() (bool, error) {
		raw, err := cs.CoreV1().Pods(realNodeNamespace).GetLogs(agg.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return false, nil // not serving its log yet
		}
		m := resumedRE.FindStringSubmatch(string(raw))
		if m != nil {
			resumedAt, _ = strconv.Atoi(m[1])
		}
		return m != nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the replacement aggregator resumed after round %d", resumedAt)
	if resumedAt >= rounds {
		t.Fatalf("the job had ended before the aggregator's pod was deleted (resumed after round %d of %d): make its rounds slower", resumedAt, rounds)
	}
	waitReplaced(ctx, t, cs, name, 2, oldExec)

	// logs -f of the running job ends by itself when the job ends.
	tf := time.Now()
	follow, err := l.followLogs(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("logs -f of the running job ended by itself after %.1f s", time.Since(tf).Seconds())
	// The job's last lines: its last evaluation and the final figures.
	last := regexp.MustCompile(`(?m)^\[aggregator\] .*FL Testing in round: ` + strconv.Itoa(rounds) + `,`)
	final := regexp.MustCompile(`(?m)^\[aggregator\] .*Final test accuracy: top_1 `)
	if !last.MatchString(follow) || !final.MatchString(follow) {
		t.Errorf("logs -f lacks the job's last lines (round %d's FL Testing line, the final accuracy):\n%s", rounds, tail(follow, 30))
	}

	// The follow started before the faults ends too, with both
	// replacements' output.
	out, err = early()
	if err != nil {
		t.Fatal(err)
	}
	if !resumedRE.MatchString(out) || !last.MatchString(out) || !final.MatchString(out) {
		t.Errorf("logs -f from the start lacks the replacement aggregator's lines (resumed, round %d, final accuracy):\n%s", rounds, tail(out, 30))
	}
	if n := len(regexp.MustCompile(`(?m)^\[executor-2\] .*Executor 2 \(incarnation [0-9a-f]+\) connecting to aggregator`).FindAllString(out, -1)); n != 2 {
		t.Errorf("logs -f from the start shows %d starts of executor 2, want 2 (its first pod and the replacement)", n)
	}

	// The job Succeeded, every round once in metrics.jsonl.
	if err := pollUntil(ctx, "every process Succeeded", func() (bool, error) {
		st, err = l.status(ctx, name)
		return err == nil && st.Phase == backend.Succeeded && allSucceeded(st), err
	}); err != nil {
		t.Fatalf("%v (status %+v)", err, st)
	}
	t.Logf("submit to Succeeded, through both faults: %.1f s", time.Since(t0).Seconds())
	for _, p := range st.Processes {
		if (p.Name == "executor-2" || p.Name == backend.AggregatorProcess) != (p.Restarts > 0) {
			t.Errorf("%s restarted %d times (only executor-2 and the aggregator were replaced)", p.Name, p.Restarts)
		}
	}
	recs, err := results.ReadFile(filepath.Join(logDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, r := range recs {
		seen[r.Round]++
	}
	for r := 0; r <= rounds; r++ {
		if seen[r] != 1 {
			t.Errorf("metrics.jsonl has %d records of round %d, want 1", seen[r], r)
		}
	}
	// Executor 2's replacement worked for the replacement aggregator.
	if raw, err := cs.CoreV1().Pods(realNodeNamespace).GetLogs(agg.Name, &corev1.PodLogOptions{}).DoRaw(ctx); err != nil {
		t.Error(err)
	} else if !regexp.MustCompile(`Executor 2 registered`).Match(raw) {
		t.Errorf("executor 2's replacement never registered with the resumed aggregator:\n%s", tail(string(raw), 30))
	}

	// results of the ended job: the replacement aggregator's log.
	checkResultsFromLog(ctx, t, l, name, recs, resumedAt+1)

	// logs -f of the ended job prints its output and exits.
	out, err = l.followLogs(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !last.MatchString(out) || !final.MatchString(out) {
		t.Errorf("logs -f of the ended job lacks its last lines:\n%s", tail(out, 30))
	}

	if _, err := l.run(ctx, "stop", name); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if left := labelledObjects(t, cs, name); len(left) > 0 {
		t.Errorf("after stop: %v", left)
	}
}

// startFollow starts `launcher logs -f`; the function it returns waits
// for it to exit by itself (the test's deadline is the hang guard).
func (l nodeLauncher) startFollow(ctx context.Context, name string) func() (string, error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, l.s.launcher, append(l.args, "logs", "-f", name)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Start()
	return func() (string, error) {
		if err == nil {
			err = cmd.Wait()
		}
		if err != nil {
			return o.String(), fmt.Errorf("launcher logs -f: %v (stderr %s)\n%s", err, e.String(), tail(o.String(), 30))
		}
		return o.String(), nil
	}
}

// followLogs runs `launcher logs -f` until it exits by itself (the
// test's deadline is the hang guard).
func (l nodeLauncher) followLogs(ctx context.Context, name string) (string, error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, l.s.launcher, append(l.args, "logs", "-f", name)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), fmt.Errorf("launcher logs -f: %v (stderr %s)\n%s", err, e.String(), tail(o.String(), 30))
	}
	return o.String(), nil
}

// checkResultsFromLog: `launcher results -o json` of the ended job reads
// the aggregator's log (the document is gone and metrics.jsonl is on the
// node) and agrees with metrics.jsonl from round first on.
func checkResultsFromLog(ctx context.Context, t *testing.T, l nodeLauncher, name string, want []fedlog.Record, first int) {
	t.Helper()
	out, errOut, err := l.s.launcherCmd(ctx, append(l.args, "results", "-o", "json", name)...)
	if err != nil {
		t.Fatalf("launcher results: %v\n%s%s", err, out, errOut)
	}
	var res results.Results
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("results -o json: %v\n%s", err, out)
	}
	if res.Source != results.SourceLog || res.Dropped != first {
		t.Errorf("results from %q with %d rounds dropped, want the aggregator's log with %d", res.Source, res.Dropped, first)
	}
	if first > 0 && !strings.Contains(errOut, fmt.Sprintf("starts after round %d", first-1)) {
		t.Errorf("results does not say the log starts after round %d: %q", first-1, errOut)
	}
	var wantFrom []fedlog.Record
	for _, r := range want {
		if r.Round >= first {
			wantFrom = append(wantFrom, r)
		}
	}
	if len(res.Records) != len(wantFrom) {
		t.Fatalf("results has rounds %d..., want the %d of metrics.jsonl from round %d", len(res.Records), len(wantFrom), first)
	}
	for i, r := range res.Records {
		w := wantFrom[i]
		if r.Round != w.Round || r.Participants != w.Participants || !sameValue(r.Top1, w.Top1) || !sameValue(r.Loss, w.Loss) {
			t.Errorf("results round %d: participants %d top-1 %v loss %v; metrics.jsonl round %d: %d, %v, %v",
				r.Round, r.Participants, deref(r.Top1), deref(r.Loss), w.Round, w.Participants, deref(w.Top1), deref(w.Loss))
		}
	}
	t.Logf("results of the ended job from the aggregator's log: rounds %d-%d", first, res.Records[len(res.Records)-1].Round)
}

// sameValue: both absent, or equal as the log prints them (shortest
// round-trip digits, so exactly).
func sameValue(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// TestLauncherKubernetesSubmitStopCycles submits a long job to the real
// node and stops it 5 times (as TestLauncherSubmitStopCycles does on
// Docker): after each stop no object of the job is left, and no container
// of its pods runs on the node.
func TestLauncherKubernetesSubmitStopCycles(t *testing.T) {
	s := need(t)
	infratest.Node(t)
	kc := infratest.Kube(t)
	if s.node == "" {
		t.Fatal("the real node runs but setup imported no image into it")
	}
	const cycles = 5
	ctx := ctxFor(t, 6*time.Minute)
	l := newNodeLauncher(t, s, kc)
	cs := clientset(t, kc)
	var submit, stop time.Duration
	for i := range cycles {
		name := s.jobName(fmt.Sprintf("nodecycle%d", i))
		c := quickNodeJob
		c.rounds = 100000 // runs until stopped
		file := filepath.Join(t.TempDir(), "conf_k8s.yml")
		if err := os.WriteFile(file, confK8s(s, name, nodeData(t, s, name), c), 0o644); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stopOnCleanup(t, l, cs, name, &stopped)
		t0 := time.Now()
		if _, err := l.run(ctx, "submit", "--wait", file); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		t1 := time.Now()
		if _, err := l.run(ctx, "stop", name); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		stopped = true
		submit += t1.Sub(t0)
		stop += time.Since(t1)
		if left := labelledObjects(t, cs, name); len(left) > 0 {
			t.Errorf("cycle %d: after stop: %v", i, left)
		}
		running, err := devinfra.NodeTasks(ctx, s.node, realNodeNamespace, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(running) > 0 {
			t.Errorf("cycle %d: after stop, containers of the job still run on the node: %v", i, running)
		}
	}
	t.Logf("%d cycles on the real node: submit --wait (running) %.2f s, stop %.2f s on average", cycles,
		submit.Seconds()/cycles, stop.Seconds()/cycles)
}
