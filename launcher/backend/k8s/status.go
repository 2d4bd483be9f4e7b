package k8s

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/progress"
	"github.com/fedscale/fedscale-go/runtime/config"
)

// selector selects every object of one job.
func selector(name string) string { return job.LabelJob + "=" + name }

// managedSelector selects every object the launcher made.
const managedSelector = job.LabelManagedBy + "=" + job.ManagedBy

// Look reports the job's processes from its Jobs and pods (two lists; the
// pods' own conditions say whether they are ready, so probe changes
// nothing).
func (b *Backend) Look(ctx context.Context, name string, _ bool) (backend.Status, error) {
	if err := b.validName(name); err != nil {
		return backend.Status{}, err
	}
	opts := metav1.ListOptions{LabelSelector: selector(name)}
	jl, err := b.cs.BatchV1().Jobs(b.ns).List(ctx, opts)
	if err != nil {
		return backend.Status{}, b.apiErr("listing Jobs of "+name, err)
	}
	if len(jl.Items) == 0 {
		return backend.Status{}, backend.NotFound(name, b.where())
	}
	pl, err := b.cs.CoreV1().Pods(b.ns).List(ctx, opts)
	if err != nil {
		return backend.Status{}, b.apiErr("listing pods of "+name, err)
	}
	st := computeStatus(name, ptrs(jl.Items), ptrs(pl.Items))
	if len(st.Processes) > 0 && st.Processes[0].Phase == backend.Running {
		p := b.progress(ctx, name)
		st.Round, st.Rounds, st.Accuracy = p.Round, p.Rounds, p.Accuracy
	}
	return st, nil
}

// maxMetricsBytes bounds the aggregator's /metrics as read through the
// proxy (a few KiB; the aggregator is a peer, not to be trusted for size).
const maxMetricsBytes = 4 << 20

// progress reads the round, the rounds and the last top-1 from the running
// aggregator's /metrics through the API server's service proxy (the
// job's Service, its health port), so status shows them from any machine
// with the kubeconfig; nil when they cannot be read (not serving yet, or a
// launcher without rbac.yaml's services/proxy right: status goes on
// without them).
func (b *Backend) progress(ctx context.Context, name string) progress.Progress {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := b.cs.CoreV1().Services(b.ns).ProxyGet("http", AggregatorName(name), portHealth, "/metrics", nil).Stream(ctx)
	if err != nil {
		return progress.Progress{}
	}
	defer rc.Close()
	p, err := progress.Parse(io.LimitReader(rc, maxMetricsBytes))
	if err != nil {
		return progress.Progress{}
	}
	return p
}

// LookAll reports one Status per aggregator Job the launcher made.
func (b *Backend) LookAll(ctx context.Context) ([]backend.Status, error) {
	opts := metav1.ListOptions{LabelSelector: managedSelector}
	jl, err := b.cs.BatchV1().Jobs(b.ns).List(ctx, opts)
	if err != nil {
		return nil, b.apiErr("listing Jobs", err)
	}
	if len(jl.Items) == 0 {
		return nil, nil
	}
	pl, err := b.cs.CoreV1().Pods(b.ns).List(ctx, opts)
	if err != nil {
		return nil, b.apiErr("listing pods", err)
	}
	jobsOf := map[string][]*batchv1.Job{}
	podsOf := map[string][]*corev1.Pod{}
	var names []string
	for _, j := range ptrs(jl.Items) {
		n := j.Labels[job.LabelJob]
		if n == "" {
			continue
		}
		if j.Labels[job.LabelComponent] == componentAggregator {
			names = append(names, n)
		}
		jobsOf[n] = append(jobsOf[n], j)
	}
	for _, p := range ptrs(pl.Items) {
		podsOf[p.Labels[job.LabelJob]] = append(podsOf[p.Labels[job.LabelJob]], p)
	}
	sort.Strings(names)
	var out []backend.Status
	for _, n := range names {
		out = append(out, computeStatus(n, jobsOf[n], podsOf[n]))
	}
	return out, nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// computeStatus derives the job's status from its Jobs and pods (as listed
// or as an informer holds them). Each process is its Job's newest pod: the
// aggregator, and executor-N from the pods of rank N's Job (label
// job.LabelRank).
func computeStatus(name string, jobs []*batchv1.Job, pods []*corev1.Pod) backend.Status {
	st := backend.Status{Job: name, Backend: job.BackendK8s}
	var agg *batchv1.Job
	execJobs := map[int]*batchv1.Job{}
	maxRank := 0
	for _, j := range jobs {
		switch j.Labels[job.LabelComponent] {
		case componentAggregator:
			agg = j
		case componentExecutor:
			if r, ok := rankOf(j.Labels); ok {
				execJobs[r] = j
				maxRank = max(maxRank, r)
			}
		}
	}
	// The aggregator Job records how many executors the job has; without
	// it, the executors' Jobs still show what is left.
	executors := maxRank
	if agg != nil {
		if n, err := strconv.Atoi(agg.Annotations[AnnotationExecutors]); err == nil && n >= 0 && n <= config.MaxExecutors {
			executors = n
		}
		st.Created = agg.CreationTimestamp.Time.UTC()
	}

	var aggPods []*corev1.Pod
	execPods := make([][]*corev1.Pod, executors)
	for _, p := range pods {
		switch p.Labels[job.LabelComponent] {
		case componentAggregator:
			aggPods = append(aggPods, p)
		case componentExecutor:
			if r, ok := rankOf(p.Labels); ok && r <= executors {
				execPods[r-1] = append(execPods[r-1], p)
			}
		}
	}

	// The aggregator: its Job decides success and final failure.
	ps := slot{name: backend.AggregatorProcess, pods: aggPods, limit: 0}
	if agg != nil {
		// With save_checkpoint (restartPolicy OnFailure) a failure restarts
		// in place, but a pod deleted or evicted fails as a whole: the Job
		// makes a new one while under its backoffLimit (past it, the Job's
		// Failed condition says so).
		if agg.Spec.BackoffLimit != nil {
			ps.limit = int(*agg.Spec.BackoffLimit)
		}
		ps.jobFailed = int(agg.Status.Failed)
		ps.done = jobCondition(agg, batchv1.JobComplete) != nil
		if c := jobCondition(agg, batchv1.JobFailed); c != nil {
			ps.failed = conditionMessage(c)
		}
	} else {
		ps.failed = "its Job " + AggregatorName(name) + " is gone"
	}
	st.Processes = append(st.Processes, ps.status())

	for r := 1; r <= executors; r++ {
		// A Job that is gone: what it most likely had.
		s := slot{name: "executor-" + strconv.Itoa(r), pods: execPods[r-1], limit: job.DefaultExecutorRestarts(job.BackendK8s)}
		if ej := execJobs[r]; ej != nil {
			if ej.Spec.BackoffLimit != nil {
				s.limit = int(*ej.Spec.BackoffLimit)
			}
			s.jobFailed = int(ej.Status.Failed)
			s.done = jobCondition(ej, batchv1.JobComplete) != nil
			if c := jobCondition(ej, batchv1.JobFailed); c != nil {
				s.failed = conditionMessage(c)
			}
		} else if agg != nil {
			s.failed = "its Job " + ExecutorName(name, r) + " is gone"
		}
		st.Processes = append(st.Processes, s.status())
	}
	return st
}

// rankOf is the executor rank an object's labels carry (job.LabelRank).
func rankOf(labels map[string]string) (int, bool) {
	r, err := strconv.Atoi(labels[job.LabelRank])
	return r, err == nil && r >= 1 && r <= config.MaxExecutors
}

// slot is one process: every pod that ran it, and what its Job says.
type slot struct {
	name   string
	pods   []*corev1.Pod
	limit  int    // failed pods tolerated (restartPolicy Never)
	done   bool   // the Job counts it as completed
	failed string // the Job gave up on it: why
	// jobFailed is the Job's count of its failed pods, deleted ones
	// included (a pod deleted by hand, or evicted, is gone from the list
	// but was an attempt).
	jobFailed int
}

func (s slot) status() backend.ProcessStatus {
	out := backend.ProcessStatus{Name: s.name, Phase: backend.Pending}
	p := newest(s.pods)
	failedPods := 0
	for _, q := range s.pods {
		if q.Status.Phase == corev1.PodFailed {
			failedPods++
		}
	}
	if p == nil {
		switch {
		case s.done:
			out.Phase = backend.Succeeded
		case s.failed != "":
			out.Phase, out.Message = backend.Failed, s.failed
		default:
			out.Message = "no pod yet"
		}
		return out
	}
	out.Where = "pod " + p.Name
	if p.Status.Phase != corev1.PodPending || started(p) {
		out.LogRef = p.Name
	}
	out.Restarts = max(failedPods, s.jobFailed)
	if p.Status.Phase == corev1.PodFailed {
		out.Restarts-- // this attempt is not a restart yet
	}
	for _, c := range p.Status.ContainerStatuses {
		out.Restarts += int(c.RestartCount)
	}
	cs := containerStatus(p)
	if cs != nil && cs.State.Terminated != nil {
		code := int(cs.State.Terminated.ExitCode)
		out.ExitCode = &code
	}
	switch p.Status.Phase {
	case corev1.PodPending:
		out.Message = pendingReason(p, cs)
		if cs != nil && cs.State.Waiting != nil && imageFailures[cs.State.Waiting.Reason] {
			// The kubelet keeps retrying, but nothing here will change
			// by waiting: a wait ends with the reason instead of hanging.
			out.Phase = backend.Failed
			out.Message = "the node cannot get image " + cs.Image + ": " + out.Message
		}
	case corev1.PodRunning:
		out.Phase = backend.Running
		out.Ready = podReady(p)
		if cs != nil && cs.State.Waiting != nil {
			// Restarting in place (OnFailure) or crash-looping.
			out.Message = cs.State.Waiting.Reason
			if t := cs.LastTerminationState.Terminated; t != nil {
				out.Message += fmt.Sprintf(" after exit code %d (%s)", t.ExitCode, t.Reason)
			}
		}
	case corev1.PodSucceeded:
		out.Phase = backend.Succeeded
	case corev1.PodFailed:
		msg := failureMessage(p, cs)
		if failedPods > s.limit || s.failed != "" {
			out.Phase, out.Message = backend.Failed, msg
			if s.failed != "" && !strings.Contains(msg, s.failed) {
				out.Message = msg + "; " + s.failed
			}
		} else {
			out.Message = fmt.Sprintf("attempt %d of %d failed (%s); restarting", failedPods, s.limit+1, msg)
		}
	default:
		out.Phase = backend.Unknown
		out.Message = p.Status.Reason
	}
	if out.Restarts > 0 && p.Status.Phase != corev1.PodFailed && out.Message == "" {
		// A new pod replaced a failed one: how the last one ended.
		var last *corev1.Pod
		for _, q := range s.pods {
			if q.Status.Phase == corev1.PodFailed && (last == nil || last.CreationTimestamp.Before(&q.CreationTimestamp)) {
				last = q
			}
		}
		if last != nil {
			out.Message = "restarted after " + failureMessage(last, containerStatus(last))
		}
	}
	if s.failed != "" && out.Phase != backend.Succeeded && out.Phase != backend.Failed {
		// The Job gave up (e.g. an in-place restarting aggregator past its
		// backoff limit) while the pod is still being torn down.
		out.Phase = backend.Failed
		out.Message = strings.TrimPrefix(out.Message+"; "+s.failed, "; ")
	}
	return out
}

// imageFailures are the container waiting reasons of an image the node
// cannot get: a process in one is Failed (status shows why, a wait ends).
var imageFailures = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
}

// containerStatus is the status of the pod's (one) container.
func containerStatus(p *corev1.Pod) *corev1.ContainerStatus {
	if len(p.Status.ContainerStatuses) == 0 {
		return nil
	}
	return &p.Status.ContainerStatuses[0]
}

// newest is the pod created last (the current attempt).
func newest(pods []*corev1.Pod) *corev1.Pod {
	var n *corev1.Pod
	for _, p := range pods {
		if n == nil || n.CreationTimestamp.Before(&p.CreationTimestamp) ||
			n.CreationTimestamp.Equal(&p.CreationTimestamp) && n.Name < p.Name {
			n = p
		}
	}
	return n
}

// podReady: the Ready condition where the pod reports conditions, else
// running is enough.
func podReady(p *corev1.Pod) bool {
	if len(p.Status.Conditions) == 0 {
		return p.Status.Phase == corev1.PodRunning
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// pendingReason says why a pod is not running yet: not scheduled (the
// scheduler's message, e.g. Insufficient nvidia.com/gpu), or its container
// is waiting (ImagePullBackOff, ContainerCreating, ...).
func pendingReason(p *corev1.Pod, cs *corev1.ContainerStatus) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			if c.Message != "" {
				return "unschedulable: " + c.Message
			}
			return "not scheduled: " + c.Reason
		}
	}
	if cs != nil && cs.State.Waiting != nil {
		msg := cs.State.Waiting.Reason
		if cs.State.Waiting.Message != "" {
			msg += ": " + cs.State.Waiting.Message
		}
		return msg
	}
	if p.Spec.NodeName == "" {
		return "waiting for the scheduler"
	}
	return "starting on " + p.Spec.NodeName
}

func failureMessage(p *corev1.Pod, cs *corev1.ContainerStatus) string {
	if cs != nil && cs.State.Terminated != nil {
		t := cs.State.Terminated
		msg := backend.ExitMessage(int(t.ExitCode), t.Reason)
		if m := strings.TrimSpace(t.Message); m != "" {
			if i := strings.LastIndexByte(m, '\n'); i >= 0 {
				m = m[i+1:] // the last line of the log: usually the error
			}
			msg += ": " + m
		}
		return msg
	}
	msg := "pod " + p.Name + " failed"
	if p.Status.Reason != "" {
		msg += " (" + p.Status.Reason + ")"
	}
	if p.Status.Message != "" {
		msg += ": " + p.Status.Message
	}
	return msg
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func conditionMessage(c *batchv1.JobCondition) string {
	if c.Message != "" {
		return c.Reason + ": " + c.Message
	}
	return c.Reason
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
