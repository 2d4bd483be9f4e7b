package k8s

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Submit creates the job: the Namespace if missing, the aggregator Job
// (first: its uid makes the owner references), then the ConfigMap, the
// Service and the executors Job. On error it deletes what it created.
func (b *Backend) Submit(ctx context.Context, s *job.Spec) (err error) {
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

	objs.ConfigMap.OwnerReferences = append(objs.ConfigMap.OwnerReferences, ref)
	cm, err := b.cs.CoreV1().ConfigMaps(b.ns).Create(ctx, objs.ConfigMap, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		return b.apiErr("creating ConfigMap "+objs.ConfigMap.Name, err)
	}
	undo = append(undo, func(c context.Context) error {
		return b.cs.CoreV1().ConfigMaps(b.ns).Delete(c, cm.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}})
	})

	objs.Service.OwnerReferences = append(objs.Service.OwnerReferences, ref)
	svc, err := b.cs.CoreV1().Services(b.ns).Create(ctx, objs.Service, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		return b.apiErr("creating Service "+objs.Service.Name, err)
	}
	undo = append(undo, func(c context.Context) error {
		return b.cs.CoreV1().Services(b.ns).Delete(c, svc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}})
	})

	objs.Executors.OwnerReferences = append(objs.Executors.OwnerReferences, ref)
	if _, err := jobs.Create(ctx, objs.Executors, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
		return b.apiErr("creating Job "+objs.Executors.Name, err)
	}
	return nil
}

const fieldManager = "fedscale-launcher"

func (b *Backend) exists(name string) error {
	return fmt.Errorf("job %q: %w (Job %s in %s); stop it first", name, backend.ErrExists, AggregatorName(name), b.where())
}

// ensureNamespace creates the namespace unless it exists. It is never
// deleted: other jobs (and other things) may live there.
func (b *Backend) ensureNamespace(ctx context.Context, objs *objects) error {
	nss := b.cs.CoreV1().Namespaces()
	_, err := nss.Get(ctx, b.ns, metav1.GetOptions{})
	if err == nil {
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

// deleteUID makes a delete apply only to the very object we created.
func deleteUID(o metav1.DeleteOptions, j *batchv1.Job) *metav1.DeleteOptions {
	o.Preconditions = &metav1.Preconditions{UID: &j.UID}
	return &o
}
