package k8s

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Logs prints the processes' output from their current pods (the newest pod
// of each process). With every process, each line is prefixed with
// "[name] "; with Follow, the streams stay open until the pods end or ctx
// does.
func (b *Backend) Logs(ctx context.Context, name string, o backend.LogOptions, w io.Writer) error {
	if err := b.validName(name); err != nil {
		return err
	}
	opts := metav1.ListOptions{LabelSelector: selector(name)}
	jl, err := b.cs.BatchV1().Jobs(b.ns).List(ctx, opts)
	if err != nil {
		return b.apiErr("listing Jobs of "+name, err)
	}
	if len(jl.Items) == 0 {
		return backend.NotFound(name, b.where())
	}
	pl, err := b.cs.CoreV1().Pods(b.ns).List(ctx, opts)
	if err != nil {
		return b.apiErr("listing pods of "+name, err)
	}
	st, byName := processPods(name, ptrs(jl.Items), ptrs(pl.Items))
	type source struct {
		name string
		pod  *corev1.Pod
	}
	var srcs []source
	var names []string
	for _, p := range st.Processes {
		names = append(names, p.Name)
		if o.Process != "" && o.Process != p.Name {
			continue
		}
		pod := byName[p.Name]
		if pod == nil || (pod.Status.Phase == corev1.PodPending && !started(pod)) {
			if o.Process != "" {
				msg := p.Message
				if msg == "" {
					msg = string(p.Phase)
				}
				return fmt.Errorf("job %s: %s has no output yet (%s)", name, p.Name, msg)
			}
			continue
		}
		srcs = append(srcs, source{p.Name, pod})
	}
	if o.Process != "" && len(srcs) == 0 {
		return fmt.Errorf("job %s has no process %q (it has %s)", name, o.Process, processRange(names))
	}
	prefix := o.Process == ""
	lw := &lineWriter{w: w}
	stream := func(s source) error {
		lo := &corev1.PodLogOptions{
			Container:  s.pod.Labels[job.LabelComponent],
			Follow:     o.Follow,
			Timestamps: o.Timestamps,
		}
		if o.Tail > 0 {
			lo.TailLines = ptr.To(int64(o.Tail))
		}
		if !o.Since.IsZero() {
			lo.SinceTime = &metav1.Time{Time: o.Since}
		}
		req := b.cs.CoreV1().Pods(b.ns).GetLogs(s.pod.Name, lo)
		rc, err := req.Stream(ctx)
		if err != nil {
			return b.apiErr("logs of "+s.name+" (pod "+s.pod.Name+")", err)
		}
		defer rc.Close()
		p := ""
		if prefix {
			p = "[" + s.name + "] "
		}
		return lw.copyLines(rc, p)
	}
	if !o.Follow {
		for _, s := range srcs {
			if err := stream(s); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stream(s); err != nil && ctx.Err() == nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil // the caller stopped following
	}
	return first
}

// processPods is the status and each process's current pod.
func processPods(name string, jobs []*batchv1.Job, pods []*corev1.Pod) (backend.Status, map[string]*corev1.Pod) {
	st := computeStatus(name, jobs, pods)
	by := map[string]*corev1.Pod{}
	var agg []*corev1.Pod
	execs := map[int][]*corev1.Pod{}
	for _, p := range pods {
		switch p.Labels[job.LabelComponent] {
		case componentAggregator:
			agg = append(agg, p)
		case componentExecutor:
			if i, ok := completionIndex(p); ok {
				execs[i] = append(execs[i], p)
			}
		}
	}
	if p := newest(agg); p != nil {
		by["aggregator"] = p
	}
	for i, ps := range execs {
		by[fmt.Sprintf("executor-%d", i+1)] = newest(ps)
	}
	return st, by
}

// started: the container has run (or runs), so it has output to show.
func started(p *corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running != nil || c.State.Terminated != nil || c.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

func processRange(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return names[0] + " and " + names[1] + ".." + strings.TrimPrefix(names[len(names)-1], "executor-")
}

// lineWriter writes whole lines from several streams without interleaving.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) copyLines(r io.Reader, prefix string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			l.mu.Lock()
			_, werr := io.WriteString(l.w, prefix+line)
			l.mu.Unlock()
			if werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
