package k8s

import (
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// pod makes a pod of the job: index < 0 is the aggregator, else executor
// index+1's (its Job's pod, labelled with its rank).
func pod(jobName string, index int, attempt int, phase corev1.PodPhase, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace:         "ns",
		Labels:            map[string]string{job.LabelJob: jobName, job.LabelManagedBy: job.ManagedBy},
		Annotations:       map[string]string{},
		CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(attempt) * time.Minute)),
	}, Status: corev1.PodStatus{Phase: phase}}
	cname := "aggregator"
	if index < 0 {
		p.Name = jobName + "-aggregator-" + strconv.Itoa(attempt)
		p.Labels[job.LabelComponent] = "aggregator"
	} else {
		cname = "executor"
		p.Name = jobName + "-executor-" + strconv.Itoa(index+1) + "-" + strconv.Itoa(attempt)
		p.Labels[job.LabelComponent] = "executor"
		p.Labels[job.LabelRank] = strconv.Itoa(index + 1)
	}
	p.UID = ktypes.UID("uid-" + p.Name)
	cs := corev1.ContainerStatus{Name: cname}
	switch phase {
	case corev1.PodRunning:
		cs.State.Running = &corev1.ContainerStateRunning{}
		cs.Ready = true
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	case corev1.PodSucceeded:
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}
	case corev1.PodFailed:
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: "line 1\nexecutor: boom"}
	}
	if phase != corev1.PodPending {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		p.Spec.NodeName = "node"
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func testJobs(t testing.TB, p jobParams) []*batchv1.Job {
	o, err := buildObjects(testSpec(t, p), "ns")
	if err != nil {
		t.Fatal(err)
	}
	return append([]*batchv1.Job{o.Aggregator}, o.Executors...)
}

func notReady(p *corev1.Pod) {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
}

func pullFails(p *corev1.Pod) {
	p.Spec.NodeName = "n"
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "executor", Image: "reg/exec:none", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "failed to resolve reference"}}}}
}

func TestComputeStatus(t *testing.T) {
	type want struct {
		phase backend.Phase
		procs string // name=phase[/ready][/rN][/exitN] ...
		msg   string // in some process's message
	}
	const j = "st"
	for _, tc := range []struct {
		name string
		ckpt bool
		jobs func([]*batchv1.Job)
		pods []*corev1.Pod
		want want
	}{
		{
			name: "nothing yet",
			want: want{backend.Pending, "aggregator=Pending executor-1=Pending executor-2=Pending", "no pod yet"},
		},
		{
			name: "unschedulable executor",
			pods: []*corev1.Pod{
				pod(j, -1, 0, corev1.PodRunning),
				pod(j, 0, 0, corev1.PodRunning),
				pod(j, 1, 0, corev1.PodPending, func(p *corev1.Pod) {
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
						Message: "0/6 nodes are available: 4 Insufficient nvidia.com/gpu"}}
				}),
			},
			want: want{backend.Pending, "aggregator=Running/ready executor-1=Running/ready executor-2=Pending", "Insufficient nvidia.com/gpu"},
		},
		{
			name: "all running, one not ready",
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodRunning), pod(j, 0, 0, corev1.PodRunning, notReady), pod(j, 1, 0, corev1.PodRunning)},
			want: want{backend.Running, "aggregator=Running/ready executor-1=Running executor-2=Running/ready", ""},
		},
		{
			name: "running without conditions counts as ready",
			pods: []*corev1.Pod{
				pod(j, -1, 0, corev1.PodRunning, func(p *corev1.Pod) { p.Status.Conditions = nil }),
				pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 0, corev1.PodRunning),
			},
			want: want{backend.Running, "aggregator=Running/ready executor-1=Running/ready executor-2=Running/ready", ""},
		},
		{
			name: "aggregator failed, no retries",
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodFailed), pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 0, corev1.PodRunning)},
			want: want{backend.Failed, "aggregator=Failed/exit3 executor-1=Running/ready executor-2=Running/ready", "exit code 3 (Error): executor: boom"},
		},
		{
			name: "executor retrying with a new pod of its index",
			pods: []*corev1.Pod{
				pod(j, -1, 0, corev1.PodRunning),
				pod(j, 0, 0, corev1.PodFailed), pod(j, 0, 1, corev1.PodRunning),
				pod(j, 1, 0, corev1.PodRunning),
			},
			want: want{backend.Running, "aggregator=Running/ready executor-1=Running/ready/r1 executor-2=Running/ready", ""},
		},
		{
			// The Job counts the deleted pod; the pod list no longer has it.
			name: "executor pod deleted, replaced by its Job",
			jobs: func(js []*batchv1.Job) { js[2].Status.Failed = 1 },
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodRunning), pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 1, corev1.PodRunning)},
			want: want{backend.Running, "aggregator=Running/ready executor-1=Running/ready executor-2=Running/ready/r1", ""},
		},
		{
			// Its container ended by the deletion's signal; the Job makes
			// a new pod, which resumes from the checkpoint.
			name: "aggregator pod deleted with checkpoints, replacement not there yet",
			ckpt: true,
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodFailed), pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 0, corev1.PodRunning)},
			want: want{backend.Pending, "aggregator=Pending/exit3 executor-1=Running/ready executor-2=Running/ready", "attempt 1 of 4 failed"},
		},
		{
			name: "aggregator pod deleted, replaced by its Job, restarted in place once",
			ckpt: true,
			jobs: func(js []*batchv1.Job) { js[0].Status.Failed = 1 },
			pods: []*corev1.Pod{
				pod(j, -1, 1, corev1.PodRunning, func(p *corev1.Pod) { p.Status.ContainerStatuses[0].RestartCount = 1 }),
				pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 0, corev1.PodRunning),
			},
			want: want{backend.Running, "aggregator=Running/ready/r2 executor-1=Running/ready executor-2=Running/ready", ""},
		},
		{
			name: "executor failed, replacement not there yet",
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodRunning), pod(j, 0, 0, corev1.PodFailed), pod(j, 1, 0, corev1.PodRunning)},
			want: want{backend.Pending, "aggregator=Running/ready executor-1=Pending/exit3 executor-2=Running/ready", "attempt 1 of 4 failed"},
		},
		{
			name: "executor failed for good",
			jobs: func(js []*batchv1.Job) {
				js[2].Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}
			},
			pods: []*corev1.Pod{
				pod(j, -1, 0, corev1.PodRunning), pod(j, 0, 0, corev1.PodRunning),
				pod(j, 1, 0, corev1.PodFailed), pod(j, 1, 1, corev1.PodFailed), pod(j, 1, 2, corev1.PodFailed), pod(j, 1, 3, corev1.PodFailed),
			},
			// The aggregator carries on without it (before the shared
			// lifecycle the job was Failed here).
			want: want{backend.Running, "aggregator=Running/ready executor-1=Running/ready executor-2=Failed/r3/exit3", "exit code 3"},
		},
		{
			name: "done: aggregator job complete, pods gone",
			jobs: func(js []*batchv1.Job) {
				js[0].Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
				for _, e := range js[1:] {
					e.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
				}
			},
			want: want{backend.Succeeded, "aggregator=Succeeded executor-1=Succeeded executor-2=Succeeded", ""},
		},
		{
			name: "an executor's Job deleted",
			jobs: func(js []*batchv1.Job) { js[2] = js[1] }, // only rank 1's left
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodRunning), pod(j, 0, 0, corev1.PodRunning)},
			want: want{backend.Running, "aggregator=Running/ready executor-1=Running/ready executor-2=Failed", "its Job st-executor-2 is gone"},
		},
		{
			name: "done with pods",
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodSucceeded), pod(j, 0, 0, corev1.PodSucceeded), pod(j, 1, 0, corev1.PodRunning)},
			want: want{backend.Succeeded, "aggregator=Succeeded/exit0 executor-1=Succeeded/exit0 executor-2=Running/ready", ""},
		},
		{
			name: "aggregator restarting in place with checkpoints",
			ckpt: true,
			pods: []*corev1.Pod{
				pod(j, -1, 0, corev1.PodRunning, func(p *corev1.Pod) {
					cs := &p.Status.ContainerStatuses[0]
					cs.RestartCount = 2
					cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
					cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
					notReady(p)
				}),
				pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 0, corev1.PodRunning),
			},
			want: want{backend.Running, "aggregator=Running/r2 executor-1=Running/ready executor-2=Running/ready", "CrashLoopBackOff after exit code 1"},
		},
		{
			name: "aggregator job failed past its backoff limit",
			ckpt: true,
			jobs: func(js []*batchv1.Job) {
				js[0].Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}
			},
			pods: []*corev1.Pod{pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 0, corev1.PodRunning)},
			want: want{backend.Failed, "aggregator=Failed executor-1=Running/ready executor-2=Running/ready", "BackoffLimitExceeded"},
		},
		{
			name: "image pull trouble",
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodPending, func(p *corev1.Pod) {
				p.Spec.NodeName = "n"
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "aggregator", Image: "reg/aggr:none", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "pull access denied"}}}}
			})},
			want: want{backend.Failed, "aggregator=Failed executor-1=Pending executor-2=Pending", "the node cannot get image reg/aggr:none: ImagePullBackOff: pull access denied"},
		},
		{
			name: "the executors' image the node cannot pull",
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodRunning), pod(j, 0, 0, corev1.PodPending, pullFails), pod(j, 1, 0, corev1.PodPending, pullFails)},
			want: want{backend.Failed, "aggregator=Running/ready executor-1=Failed executor-2=Failed", "the node cannot get image reg/exec:none: ErrImagePull: failed to resolve reference"},
		},
		{
			name: "pods of ranks outside the job are ignored",
			pods: []*corev1.Pod{pod(j, -1, 0, corev1.PodRunning), pod(j, 0, 0, corev1.PodRunning), pod(j, 1, 0, corev1.PodRunning), pod(j, 7, 0, corev1.PodFailed)},
			want: want{backend.Running, "aggregator=Running/ready executor-1=Running/ready executor-2=Running/ready", ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := testJobs(t, jobParams{name: j, executors: 2, ckpt: tc.ckpt})
			if tc.jobs != nil {
				tc.jobs(js)
			}
			st := backend.Summarize(computeStatus(j, js, tc.pods))
			var got []string
			msgs := ""
			for _, p := range st.Processes {
				s := p.Name + "=" + string(p.Phase)
				if p.Ready {
					s += "/ready"
				}
				if p.Restarts > 0 {
					s += "/r" + strconv.Itoa(p.Restarts)
				}
				if p.ExitCode != nil {
					s += "/exit" + strconv.Itoa(*p.ExitCode)
				}
				got = append(got, s)
				msgs += p.Message + "\n"
			}
			if g := strings.Join(got, " "); g != tc.want.procs || st.Phase != tc.want.phase {
				t.Errorf("got %s %s\nwant %s %s\nmessages:\n%s", st.Phase, g, tc.want.phase, tc.want.procs, msgs)
			}
			if !strings.Contains(msgs, tc.want.msg) {
				t.Errorf("messages %q lack %q", msgs, tc.want.msg)
			}
			if st.Job != j || st.Backend != "k8s" {
				t.Errorf("status %+v", st)
			}
		})
	}
}
