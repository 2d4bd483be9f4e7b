package k8s

import (
	"fmt"
	"maps"
	"strconv"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// Names and values of what the backend creates.
const (
	// GPUResource is the extended resource the NVIDIA device plugin offers.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"
	// AnnotationExecutors on the aggregator Job records num_executors, so
	// status lists every executor even when their Job is gone.
	AnnotationExecutors = "fedscale.dev/executors"
	// User the containers run as (the images' USER, distroless nonroot).
	runAsID int64 = 65532

	componentAggregator = "aggregator"
	componentExecutor   = "executor"

	portGRPC   = "grpc"
	portHealth = "health"

	volConfig = "config"
	volData   = "data"
	volTmp    = "tmp"
	volTLS    = "tls"

	// With save_checkpoint the aggregator restarts in place (same pod, same
	// node, so the checkpoint in the node's data_path is found) a few times;
	// without it a restart would silently train again from round 0, so a
	// failure is final and visible.
	aggregatorRetriesWithCheckpoint int32 = 3
)

// AggregatorName is the aggregator Job's and its Service's name: executors
// reach the aggregator at this DNS name.
func AggregatorName(jobName string) string { return jobName + "-aggregator" }

// ExecutorName is executor rank's Job. Each rank has a Job of its own,
// not one Indexed Job for all, because a pod template is shared by every
// pod of a Job and each rank must mount only its own key.
func ExecutorName(jobName string, rank int) string {
	return jobName + "-executor-" + strconv.Itoa(rank)
}

// ConfigMapName holds the job file.
func ConfigMapName(jobName string) string { return jobName + "-config" }

// TLSSecretName is the Secret holding one process's TLS files (rank 0 the
// aggregator): the job's CA certificate and that process's certificate
// and key, nothing of another process (runtime/mtls.FileNames).
func TLSSecretName(jobName string, rank int) string {
	return jobName + "-tls-" + mtls.ProcessName(rank)
}

// objects is everything Submit creates, in creation order after the
// Namespace: the aggregator Job first (its uid makes the owner references).
type objects struct {
	Namespace  *corev1.Namespace
	Aggregator *batchv1.Job
	ConfigMap  *corev1.ConfigMap
	// Secrets holds each process's TLS files, by rank (0 the
	// aggregator); their Data is filled at submit, never in a plan.
	Secrets   []*corev1.Secret
	Service   *corev1.Service
	Executors []*batchv1.Job // by rank - 1
}

// healthPort is where each process serves /healthz and /readyz inside its
// pod: the aggregator's default (ps_port+1), and for executors one fixed
// port for all (ps_port+2, rank 1's default), given with --http-port, since
// pods do not share a network namespace.
func healthPorts(s *job.Spec) (agg, exec int) { return s.HealthPort(0), s.HealthPort(1) }

// buildObjects makes the job's objects. Owner references are added by
// Submit, once the aggregator Job's uid is known.
func buildObjects(s *job.Spec, ns string) (*objects, error) {
	if s.Executors < 1 {
		return nil, fmt.Errorf("k8s backend: job %s has %d executors; want at least 1", s.Name, s.Executors)
	}
	aggPort, execPort := healthPorts(s) // job.Parse checked they are ports
	procs := s.Processes(job.ContainerConfigPath, AggregatorName(s.Name), job.ContainerTLSDir)
	agg := procs[0]
	secrets := make([]*corev1.Secret, len(procs))
	for i, p := range procs {
		secrets[i] = &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta(TLSSecretName(s.Name, p.Rank), ns, s.Labels(&procs[i]), nil),
			Type:       corev1.SecretTypeOpaque,
			Immutable:  ptr.To(true),
		}
	}

	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(ConfigMapName(s.Name), ns, withAppComponent(s.Labels(nil), "config"), nil),
	}
	// A ConfigMap holds at most 1 MiB; job files are a few KiB.
	if len(s.Config) > 1<<20-4096 {
		return nil, fmt.Errorf("k8s backend: job file %s is %d bytes; a ConfigMap holds at most 1 MiB", s.File, len(s.Config))
	}
	if utf8.Valid(s.Config) {
		cm.Data = map[string]string{job.ContainerConfigFile: string(s.Config)}
	} else {
		cm.BinaryData = map[string][]byte{job.ContainerConfigFile: s.Config}
	}

	aggLabels := s.Labels(&agg)
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(AggregatorName(s.Name), ns, withAppComponent(s.Labels(nil), componentAggregator), nil),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			// Executors may dial before the aggregator is ready (they retry
			// for --connect-timeout); the name must resolve from the start.
			PublishNotReadyAddresses: true,
			Selector:                 map[string]string{job.LabelJob: s.Name, job.LabelComponent: componentAggregator},
			Ports: []corev1.ServicePort{
				{Name: portGRPC, Port: int32(s.PsPort), TargetPort: intstr.FromString(portGRPC), Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("grpc")},
				{Name: portHealth, Port: int32(aggPort), TargetPort: intstr.FromString(portHealth), Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("http")},
			},
		},
	}

	aggAnn := map[string]string{AnnotationExecutors: strconv.Itoa(s.Executors)}
	if s.File != "" {
		aggAnn[job.AnnotationJobFile] = s.File
	}
	aggPod := podTemplate(s, aggLabels, componentAggregator, agg.Image, agg.Args, aggPort,
		[]corev1.ContainerPort{{Name: portGRPC, ContainerPort: int32(s.PsPort), Protocol: corev1.ProtocolTCP}}, false, 0, s.K8s.Aggregator)
	aggJob := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta(AggregatorName(s.Name), ns, aggLabels, aggAnn),
		Spec: batchv1.JobSpec{
			Parallelism: ptr.To(int32(1)),
			Completions: ptr.To(int32(1)),
			Template:    aggPod,
		},
	}
	if s.Job.Conf.SaveCheckpoint {
		aggJob.Spec.BackoffLimit = ptr.To(aggregatorRetriesWithCheckpoint)
		aggJob.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	} else {
		aggJob.Spec.BackoffLimit = ptr.To(int32(0))
		aggJob.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	}

	// The executors: one Job of one pod per rank, so that each pod
	// mounts its own rank's Secret alone.
	var execJobs []*batchv1.Job
	for _, p := range procs[1:] {
		labels := s.Labels(&p)
		args := append(append([]string(nil), p.Args...), "--http-port", strconv.Itoa(execPort))
		pod := podTemplate(s, labels, componentExecutor, p.Image, args, execPort, nil, s.UseCUDA, p.Rank, s.K8s.Executor)
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
		execJobs = append(execJobs, &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta(ExecutorName(s.Name, p.Rank), ns, labels, nil),
			Spec: batchv1.JobSpec{
				Parallelism: ptr.To(int32(1)),
				Completions: ptr.To(int32(1)),
				// Executors restart per rank (job.Spec.ExecutorRestarts): a
				// lost executor's tasks are re-issued by the aggregator and
				// a new pod of its Job re-registers, without disturbing the
				// other ranks.
				BackoffLimit: ptr.To(int32(s.ExecutorRestarts)), // bounded by config.MaxExecutorRestarts
				// Never two pods of one rank at once: the replacement
				// starts only after the failed pod has fully terminated.
				PodReplacementPolicy: ptr.To(batchv1.Failed),
				// An executor the aggregator told the job failed is not
				// restarted: nothing a new pod could change.
				PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action: batchv1.PodFailurePolicyActionFailJob,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
						Operator: batchv1.PodFailurePolicyOnExitCodesOpIn,
						Values:   []int32{health.ExitJobStopped},
					},
				}}},
				Template: pod,
			},
		})
	}

	return &objects{
		Namespace: &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns},
		},
		Aggregator: aggJob,
		ConfigMap:  cm,
		Secrets:    secrets,
		Service:    svc,
		Executors:  execJobs,
	}, nil
}

// withAppComponent sets app.kubernetes.io/component on an object that
// belongs to no one process.
func withAppComponent(l map[string]string, c string) map[string]string {
	l[job.LabelAppComponent] = c
	return l
}

func meta(name, ns string, labels, ann map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: ann}
}

// podTemplate is the pod of process rank (0 the aggregator), which mounts
// that process's TLS Secret alone.
func podTemplate(s *job.Spec, labels map[string]string, component, image string, args []string, healthPort int, ports []corev1.ContainerPort, gpu bool, rank int, res job.Resources) corev1.PodTemplateSpec {
	pl := make(map[string]string, len(labels))
	for k, v := range labels {
		pl[k] = v
	}
	ports = append(ports, corev1.ContainerPort{Name: portHealth, ContainerPort: int32(healthPort), Protocol: corev1.ProtocolTCP})
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(portHealth)}},
			PeriodSeconds:    period,
			TimeoutSeconds:   5,
			FailureThreshold: failures,
		}
	}
	c := corev1.Container{
		Name:            component,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            args,
		Env:             []corev1.EnvVar{{Name: job.EnvHome, Value: job.ContainerHome}},
		Ports:           ports,
		// Start-up (loading traces and the data index) may take minutes
		// before /healthz answers; liveness only counts after it has.
		StartupProbe:   probe("/healthz", 2, 150),
		LivenessProbe:  probe("/healthz", 10, 3),
		ReadinessProbe: probe("/readyz", 2, 3),
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To(runAsID),
			RunAsGroup:               ptr.To(runAsID),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: res.CPU, corev1.ResourceMemory: res.Memory},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: res.MemoryLimit},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: volConfig, MountPath: job.ContainerConfigDir, ReadOnly: true},
			{Name: volData, MountPath: job.ContainerDataPath},
			{Name: volTmp, MountPath: "/tmp"},
			{Name: volTLS, MountPath: job.ContainerTLSDir, ReadOnly: true},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	spec := corev1.PodSpec{
		Containers: []corev1.Container{c},
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true),
			RunAsUser:    ptr.To(runAsID),
			RunAsGroup:   ptr.To(runAsID),
			// The Secret's files belong to this group (mode 0440): the
			// process reads its key, no other user can.
			FSGroup:        ptr.To(runAsID),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		// The processes never call the API server: a service account
		// (k8s.service_account) is the pods' identity for the cluster's
		// policies and its image pull secrets, never a token inside.
		ServiceAccountName:           s.K8s.ServiceAccount,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		PriorityClassName:            s.K8s.PriorityClass,
		NodeSelector:                 maps.Clone(s.K8s.NodeSelector),
		Volumes: []corev1.Volume{
			{Name: volConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(s.Name)},
				Items:                []corev1.KeyToPath{{Key: job.ContainerConfigFile, Path: job.ContainerConfigFile}},
			}}},
			dataVolume(s.DataPath, s.K8s.DataPVC),
			{Name: volTmp, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: volTLS, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: TLSSecretName(s.Name, rank), Items: keyItems(mtls.FileNames(rank)), DefaultMode: ptr.To(int32(0o440)),
			}}},
		},
	}
	for _, name := range s.K8s.ImagePullSecrets {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
	}
	if gpu {
		spec.Containers[0].Resources.Limits[GPUResource] = resource.MustParse("1")
		spec.Tolerations = []corev1.Toleration{{Key: string(GPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}
	for _, t := range s.K8s.Tolerations {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
			Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value,
			Effect: corev1.TaintEffect(t.Effect), TolerationSeconds: t.Seconds,
		})
	}
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: pl}, Spec: spec}
}

func keyItems(keys []string) []corev1.KeyToPath {
	out := make([]corev1.KeyToPath, len(keys))
	for i, k := range keys {
		out[i] = corev1.KeyToPath{Key: k, Path: k}
	}
	return out
}

// dataVolume is the PersistentVolumeClaim k8s.data_pvc (fsGroup makes it
// writable for the pods' user), or data_path on the node (it must exist
// there, as in the original), or, without either, a scratch folder so the
// default log_path ($FEDSCALE_HOME/benchmark) stays writable under a
// read-only root.
func dataVolume(dataPath, pvc string) corev1.Volume {
	if pvc != "" {
		return corev1.Volume{Name: volData, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc}}}
	}
	if dataPath == "" {
		return corev1.Volume{Name: volData, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	return corev1.Volume{Name: volData, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
		Path: dataPath, Type: ptr.To(corev1.HostPathDirectory),
	}}}
}

// ownerRef points a dependent at the aggregator Job.
func ownerRef(agg *batchv1.Job) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         "batch/v1",
		Kind:               "Job",
		Name:               agg.Name,
		UID:                agg.UID,
		Controller:         ptr.To(false),
		BlockOwnerDeletion: ptr.To(true),
	}
}
