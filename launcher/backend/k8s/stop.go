package k8s

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// Delete deletes every object with the job's label (its Jobs with background
// propagation, ConfigMap, Service and any pod left) and follows them by
// watch until none is left. The namespace stays. A job with no object at
// all is ErrNotFound.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := b.validName(name); err != nil {
		return err
	}
	sel := selector(name)
	f, err := b.follow(ctx, sel, followJobs|followPods|followConfigMaps|followServices|followSecrets)
	if err != nil {
		return err
	}
	defer f.stop()
	if len(f.jobs())+len(f.configMaps())+len(f.services())+len(f.secrets())+len(f.pods()) == 0 {
		return backend.NotFound(name, b.where())
	}

	jobs, pods := b.cs.BatchV1().Jobs(b.ns), b.cs.CoreV1().Pods(b.ns)
	cms, svcs, secs := b.cs.CoreV1().ConfigMaps(b.ns), b.cs.CoreV1().Services(b.ns), b.cs.CoreV1().Secrets(b.ns)
	bg := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
	requested := map[string]bool{} // kind/name/uid: asked once each
	podsSwept := false
	del := func(what string, uid types.UID, deleting bool, do func() error) error {
		key := what + "/" + string(uid)
		if deleting || requested[key] {
			return nil
		}
		requested[key] = true
		// Not found: already gone. Conflict: the uid precondition failed, so
		// a new object of that name replaced it; it carries the label and
		// comes by the watch, to be deleted in its turn.
		if err := do(); err != nil && !isNotFound(err) && !apierrors.IsConflict(err) {
			return b.apiErr("deleting "+what, err)
		}
		return nil
	}
	for {
		js, cs, ss, ks, ps := f.jobs(), f.configMaps(), f.services(), f.secrets(), f.pods()
		if len(js)+len(cs)+len(ss)+len(ks)+len(ps) == 0 {
			return nil
		}
		// Jobs first, so that their controller makes no new pods.
		for _, j := range js {
			if err := del("Job "+j.Name, j.UID, j.DeletionTimestamp != nil, func() error {
				return jobs.Delete(ctx, j.Name, *deleteUID(bg, j))
			}); err != nil {
				return err
			}
		}
		// The Job's dependents, each deleted only while it is the object
		// the follower saw (its uid).
		for _, d := range []struct {
			kind   string
			objs   []metav1.Object
			remove func(context.Context, string, metav1.DeleteOptions) error
		}{
			{"ConfigMap", objectsOf(cs), cms.Delete},
			{"Service", objectsOf(ss), svcs.Delete},
			{"Secret", objectsOf(ks), secs.Delete},
		} {
			for _, o := range d.objs {
				uid := o.GetUID()
				if err := del(d.kind+" "+o.GetName(), uid, o.GetDeletionTimestamp() != nil, func() error {
					return d.remove(ctx, o.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
				}); err != nil {
					return err
				}
			}
		}
		// The garbage collector would remove the pods after their Jobs; one
		// collection delete does it at once. A pod that shows up later (a
		// controller that had not yet seen its Job go) is deleted alone.
		if !podsSwept && len(ps) > 0 {
			podsSwept = true
			for _, p := range ps {
				requested["pod "+p.Name+"/"+string(p.UID)] = true
			}
			if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel}); err != nil && !isNotFound(err) {
				return b.apiErr("deleting pods of "+name, err)
			}
		}
		for _, p := range ps {
			if err := del("pod "+p.Name, p.UID, p.DeletionTimestamp != nil, func() error {
				return pods.Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
			}); err != nil {
				return err
			}
		}
		if err := f.next(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("job %s: stopping: %w; still there: %s", name, err, left(len(js), len(cs), len(ss), len(ks), len(ps)))
			}
			return err
		}
	}
}

func left(jobs, cms, svcs, secrets, pods int) string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{jobs, "Job"}, {cms, "ConfigMap"}, {svcs, "Service"}, {secrets, "Secret"}, {pods, "pod"}} {
		if c.n == 1 {
			parts = append(parts, "1 "+c.what)
		} else if c.n > 1 {
			parts = append(parts, fmt.Sprintf("%d %ss", c.n, c.what))
		}
	}
	return strings.Join(parts, ", ")
}

// objectsOf lists typed objects as their metadata.
func objectsOf[T metav1.Object](in []T) []metav1.Object {
	out := make([]metav1.Object, len(in))
	for i, o := range in {
		out[i] = o
	}
	return out
}
