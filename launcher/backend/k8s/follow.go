package k8s

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// A follower keeps a copy of one job's objects of some kinds, up to date by
// watch: one client-go informer per kind (list, then watch from the list's
// resourceVersion; re-listed by the informer's reflector when the version
// has expired). Nothing polls.
//
// The informers log through a discarded contextual logger, not klog's
// global one, and their list and watch errors come back to the caller: any
// error before the first list fails follow; after it, a transient one (the
// server restarting, overloaded, out of reach) is left to the reflector's
// retries, and any other (a forbidden watch, say) fails the follower's
// next call at once instead of being retried forever.
type follower struct {
	b       *Backend
	kinds   []*kind
	changed chan struct{} // a store changed since the last next
	errc    chan error    // the first error no retry can fix
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// kind is one resource the follower keeps.
type kind struct {
	resource string
	inf      cache.SharedIndexInformer
}

// Kinds a follower can keep.
const (
	followPods = 1 << iota
	followJobs
	followConfigMaps
	followServices
	followSecrets
)

// listWatch adapts one typed client's List and Watch to a label selector.
func listWatch[L runtime.Object](sel string,
	list func(context.Context, metav1.ListOptions) (L, error),
	w func(context.Context, metav1.ListOptions) (watch.Interface, error)) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return w(ctx, o)
		},
	}
}

func (b *Backend) kindsOf(sel string, which int) []*kind {
	var out []*kind
	jobs, pods := b.cs.BatchV1().Jobs(b.ns), b.cs.CoreV1().Pods(b.ns)
	cms, svcs, secs := b.cs.CoreV1().ConfigMaps(b.ns), b.cs.CoreV1().Services(b.ns), b.cs.CoreV1().Secrets(b.ns)
	for _, k := range []struct {
		bit      int
		resource string
		lw       *cache.ListWatch
		obj      runtime.Object
	}{
		{followJobs, "Jobs", listWatch(sel, jobs.List, jobs.Watch), &batchv1.Job{}},
		{followPods, "pods", listWatch(sel, pods.List, pods.Watch), &corev1.Pod{}},
		{followConfigMaps, "ConfigMaps", listWatch(sel, cms.List, cms.Watch), &corev1.ConfigMap{}},
		{followServices, "Services", listWatch(sel, svcs.List, svcs.Watch), &corev1.Service{}},
		{followSecrets, "Secrets", listWatch(sel, secs.List, secs.Watch), &corev1.Secret{}},
	} {
		if which&k.bit == 0 {
			continue
		}
		// A plain list first, not a watch-list stream: the reflector
		// retries a watch-list against an unreachable server until the
		// context ends, where a list fails at once with the reason.
		w := cache.ToListWatcherWithWatchListSemantics(k.lw, noWatchList{})
		out = append(out, &kind{resource: k.resource, inf: cache.NewSharedIndexInformerWithOptions(w, k.obj, cache.SharedIndexInformerOptions{})})
	}
	return out
}

// noWatchList tells the reflector not to use watch-list streams.
type noWatchList struct{}

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

// follow starts watching the kinds and returns once each has its first
// list, or the error that kept one from getting it.
func (b *Backend) follow(ctx context.Context, sel string, which int) (*follower, error) {
	fctx, cancel := context.WithCancel(klog.NewContext(ctx, logr.Discard()))
	f := &follower{b: b, kinds: b.kindsOf(sel, which), changed: make(chan struct{}, 1), errc: make(chan error, 1), cancel: cancel}
	poke := func() {
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	for _, k := range f.kinds {
		what := "listing or watching " + k.resource + " (" + sel + ")"
		if err := k.inf.SetWatchErrorHandlerWithContext(func(_ context.Context, r *cache.Reflector, err error) {
			// Until a first list has come, any error is the caller's (an
			// unreachable server says so at once); after it, the
			// reflector retries what it can.
			if r.LastSyncResourceVersion() != "" && retried(err) {
				return
			}
			select {
			case f.errc <- b.apiErr(what, err):
			default:
			}
		}); err != nil {
			cancel()
			return nil, err
		}
		if _, err := k.inf.AddEventHandler(handler); err != nil {
			cancel()
			return nil, err
		}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); k.inf.RunWithContext(fctx) }()
	}
	all := make(chan struct{})
	go func() {
		fns := make([]cache.InformerSynced, len(f.kinds))
		for i, k := range f.kinds {
			fns[i] = k.inf.HasSynced
		}
		if cache.WaitForCacheSync(fctx.Done(), fns...) {
			close(all)
		}
	}()
	select {
	case <-all:
		return f, nil
	case err := <-f.errc:
		f.stop()
		return nil, err
	case <-ctx.Done():
		f.stop()
		return nil, context.Cause(ctx)
	}
}

func (f *follower) stop() {
	f.cancel()
	f.wg.Wait()
}

// retried reports the errors the reflector recovers from by itself: an
// expired resourceVersion (it lists again), the server restarting,
// overloaded or out of reach for a moment, and the end of the follower.
func retried(err error) bool {
	if errors.Is(err, context.Canceled) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return true
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true // transport
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err)
}

// next waits for a change in any kind (a burst of changes counts as one:
// the stores already hold all of it) or for ctx to end.
func (f *follower) next(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case err := <-f.errc:
		return err
	case <-f.changed:
		return nil
	}
}

func kept[T any](f *follower, resource string) []*T {
	for _, k := range f.kinds {
		if k.resource != resource {
			continue
		}
		objs := k.inf.GetStore().List()
		out := make([]*T, 0, len(objs))
		for _, o := range objs {
			if t, ok := o.(*T); ok {
				out = append(out, t)
			} else {
				panic(fmt.Sprintf("follower: %T among %s", o, resource))
			}
		}
		return out
	}
	return nil
}

func (f *follower) pods() []*corev1.Pod             { return kept[corev1.Pod](f, "pods") }
func (f *follower) jobs() []*batchv1.Job            { return kept[batchv1.Job](f, "Jobs") }
func (f *follower) configMaps() []*corev1.ConfigMap { return kept[corev1.ConfigMap](f, "ConfigMaps") }
func (f *follower) services() []*corev1.Service     { return kept[corev1.Service](f, "Services") }
func (f *follower) secrets() []*corev1.Secret       { return kept[corev1.Secret](f, "Secrets") }
