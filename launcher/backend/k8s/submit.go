package k8s

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Create makes the job: the Namespace if missing, the aggregator Job
// (first: its uid makes the owner references), then the ConfigMap, each
// process's TLS Secret, the Service and each executor's Job. On error it
// deletes what it created.
func (b *Backend) Create(ctx context.Context, s *job.Spec) (err error) {
	objs, err := buildObjects(s, b.ns)
	if err != nil {
		return err
	}
	jobs := b.cs.BatchV1().Jobs(b.ns)
	if _, err := jobs.Get(ctx, objs.Aggregator.Name, metav1.GetOptions{}); err == nil {
		return b.exists(s.Name)
	} else if !apierrors.IsNotFound(err) {
		return b.apiErr("looking for job "+s.Name, err)
	}
	if err := b.ensureNamespace(ctx, objs); err != nil {
		return err
	}
	if err := b.checkClaim(ctx, s); err != nil {
		return err
	}

	var undo []func(context.Context) error
	defer func() {
		if err == nil {
			return
		}
		// The caller's context may be what ended; clean up regardless.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			_ = undo[i](cctx)
		}
	}()
	bg := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}

	agg, err := jobs.Create(ctx, objs.Aggregator, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		return b.exists(s.Name)
	}
	if err != nil {
		return b.apiErr("creating Job "+objs.Aggregator.Name, err)
	}
	undo = append(undo, func(c context.Context) error {
		return jobs.Delete(c, agg.Name, *deleteUID(bg, agg))
	})
	ref := ownerRef(agg)

	cms, svcs := b.cs.CoreV1().ConfigMaps(b.ns), b.cs.CoreV1().Services(b.ns)
	if err := createOwned(ctx, b, "ConfigMap", objs.ConfigMap, ref, cms.Create, cms.Delete, &undo); err != nil {
		return err
	}
	// Executors dial the Service by its short name (their namespace's);
	// the longer names serve clients elsewhere in the cluster.
	svcName := objs.Service.Name
	bundle, err := s.IssueTLS(svcName, svcName+"."+b.ns, svcName+"."+b.ns+".svc", svcName+"."+b.ns+".svc.cluster.local")
	if err != nil {
		return err
	}
	secs := b.cs.CoreV1().Secrets(b.ns)
	for rank, sec := range objs.Secrets {
		// Each Secret holds one process's key: a pod can read no other's.
		sec.Data = bundle.For(rank)
		if err := createOwned(ctx, b, "Secret", sec, ref, secs.Create, secs.Delete, &undo); err != nil {
			return err
		}
	}
	if err := createOwned(ctx, b, "Service", objs.Service, ref, svcs.Create, svcs.Delete, &undo); err != nil {
		return err
	}
	for _, ej := range objs.Executors {
		if err := createOwned(ctx, b, "Job", ej, ref, jobs.Create, func(c context.Context, name string, o metav1.DeleteOptions) error {
			o.PropagationPolicy = bg.PropagationPolicy
			return jobs.Delete(c, name, o)
		}, &undo); err != nil {
			return err
		}
	}
	return nil
}

const fieldManager = "fedscale-launcher"

// createOwned creates obj owned by ref (the aggregator Job) and adds its
// deletion to undo, on the condition that it is still the object created
// (its uid), so an undo never deletes a later job's object of the same name.
func createOwned[T interface {
	metav1.Object
	runtime.Object
}](ctx context.Context, b *Backend, kind string, obj T, ref metav1.OwnerReference,
	create func(context.Context, T, metav1.CreateOptions) (T, error),
	del func(context.Context, string, metav1.DeleteOptions) error,
	undo *[]func(context.Context) error) error {
	obj.SetOwnerReferences(append(obj.GetOwnerReferences(), ref))
	made, err := create(ctx, obj, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		return b.apiErr("creating "+kind+" "+obj.GetName(), err)
	}
	name, uid := made.GetName(), made.GetUID()
	*undo = append(*undo, func(c context.Context) error {
		return del(c, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	})
	return nil
}

func (b *Backend) exists(name string) error {
	return fmt.Errorf("job %q: %w (Job %s in %s); stop it first", name, backend.ErrExists, AggregatorName(name), b.where())
}

// ensureNamespace creates the namespace unless it exists (or the launcher
// may not look). It is never deleted: other jobs (and other things) may
// live there.
func (b *Backend) ensureNamespace(ctx context.Context, objs *objects) error {
	nss := b.cs.CoreV1().Namespaces()
	_, err := nss.Get(ctx, b.ns, metav1.GetOptions{})
	if err == nil || apierrors.IsForbidden(err) {
		// Forbidden: a launcher with only rbac.yaml's Role may not read
		// namespaces; its namespace exists or the Job's create says so.
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return b.apiErr("looking for namespace "+b.ns, err)
	}
	_, err = nss.Create(ctx, objs.Namespace, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return b.apiErr("creating namespace "+b.ns, err)
	}
	return nil
}

// checkClaim fails, naming the key, when k8s.data_pvc names no
// PersistentVolumeClaim of the namespace: the pods would wait for it
// forever. A launcher that may not read claims leaves it to the
// scheduler, whose reason status shows.
func (b *Backend) checkClaim(ctx context.Context, s *job.Spec) error {
	pvc := s.K8s.DataPVC
	if pvc == "" {
		return nil
	}
	_, err := b.cs.CoreV1().PersistentVolumeClaims(b.ns).Get(ctx, pvc, metav1.GetOptions{})
	switch {
	case err == nil, apierrors.IsForbidden(err):
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: k8s.data_pvc %s: no PersistentVolumeClaim %s in %s; create it (ReadWriteMany when the pods may run on several nodes) or fix the name", s.File, pvc, pvc, b.where())
	}
	return b.apiErr("looking for PersistentVolumeClaim "+pvc, err)
}

// deleteUID makes a delete apply only to the very object we created.
func deleteUID(o metav1.DeleteOptions, j *batchv1.Job) *metav1.DeleteOptions {
	o.Preconditions = &metav1.Preconditions{UID: &j.UID}
	return &o
}
