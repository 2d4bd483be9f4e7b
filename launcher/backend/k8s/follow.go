package k8s

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// A follower keeps a copy of one job's objects of some kinds, up to date
// by watch: for each kind one List, then one Watch from the list's
// resourceVersion, re-opened from the last resourceVersion seen when the
// server ends it (and listed again only if that version has expired).
// Nothing polls: the API server is asked again only when a watch ends.
//
// It is a small informer without client-go's informer machinery, so that
// its errors come back to the caller (a forbidden watch fails Wait at once
// instead of being retried and logged) and nothing writes to the log.
type follower struct {
	b      *Backend
	sel    string
	kinds  []*kind
	events chan kindEvent
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// kind is one resource the follower keeps.
type kind struct {
	resource string
	list     func(ctx context.Context, o metav1.ListOptions) ([]runtime.Object, string, error)
	watch    func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
	objs     map[string]runtime.Object // by name (one namespace)
	rv       string                    // of the first list
}

type kindEvent struct {
	k        *kind
	ev       watch.Event
	replace  []runtime.Object // with replaced: a new list, after an expired resourceVersion
	replaced bool
	err      error // the follower cannot go on
}

// Kinds a follower can keep.
const (
	followPods = 1 << iota
	followJobs
	followConfigMaps
	followServices
)

func (b *Backend) kindsOf(which int) []*kind {
	var out []*kind
	if which&followJobs != 0 {
		c := b.cs.BatchV1().Jobs(b.ns)
		out = append(out, kindFor("Jobs", c.List, c.Watch))
	}
	if which&followPods != 0 {
		c := b.cs.CoreV1().Pods(b.ns)
		out = append(out, kindFor("pods", c.List, c.Watch))
	}
	if which&followConfigMaps != 0 {
		c := b.cs.CoreV1().ConfigMaps(b.ns)
		out = append(out, kindFor("ConfigMaps", c.List, c.Watch))
	}
	if which&followServices != 0 {
		c := b.cs.CoreV1().Services(b.ns)
		out = append(out, kindFor("Services", c.List, c.Watch))
	}
	return out
}

// kindFor adapts one typed client's List and Watch.
func kindFor[L runtime.Object](resource string,
	list func(context.Context, metav1.ListOptions) (L, error),
	w func(context.Context, metav1.ListOptions) (watch.Interface, error)) *kind {
	return &kind{resource: resource, watch: w,
		list: func(ctx context.Context, o metav1.ListOptions) ([]runtime.Object, string, error) {
			l, err := list(ctx, o)
			if err != nil {
				return nil, "", err
			}
			items, err := apimeta.ExtractList(l)
			if err != nil {
				return nil, "", err
			}
			acc, err := apimeta.ListAccessor(l)
			if err != nil {
				return nil, "", err
			}
			return items, acc.GetResourceVersion(), nil
		}}
}

// follow lists the kinds (in order: Jobs first, so a caller can tell an
// unknown job before anything else). Nothing is watched until start.
func (b *Backend) follow(ctx context.Context, sel string, which int) (*follower, error) {
	f := &follower{b: b, sel: sel, kinds: b.kindsOf(which), events: make(chan kindEvent, 256), cancel: func() {}}
	for _, k := range f.kinds {
		items, rv, err := k.list(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, b.apiErr("listing "+k.resource+" ("+sel+")", err)
		}
		k.objs = map[string]runtime.Object{}
		for _, o := range items {
			k.objs[nameOf(o)] = o
		}
		k.rv = rv
	}
	return f, nil
}

// start watches every kind from its list's resourceVersion, until stop.
func (f *follower) start(ctx context.Context) {
	fctx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	for _, k := range f.kinds {
		f.wg.Add(1)
		go f.run(fctx, k, k.rv)
	}
}

func (f *follower) stop() {
	f.cancel()
	f.wg.Wait()
}

func nameOf(o runtime.Object) string {
	m, err := apimeta.Accessor(o)
	if err != nil {
		return ""
	}
	return m.GetName()
}

func rvOf(o runtime.Object) string {
	m, err := apimeta.Accessor(o)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// transient errors are worth another try after a pause: the server
// restarting, overloaded, or out of reach for a moment.
func transient(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true // transport
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err)
}

// run watches one kind from rv until ctx ends, sending what it sees.
func (f *follower) run(ctx context.Context, k *kind, rv string) {
	defer f.wg.Done()
	send := func(e kindEvent) bool {
		select {
		case f.events <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	pause := time.Duration(0)
	relist := false
	for ctx.Err() == nil {
		if pause > 0 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return
			}
		}
		if relist {
			items, newRV, err := k.list(ctx, metav1.ListOptions{LabelSelector: f.sel})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !transient(err) {
					send(kindEvent{k: k, err: f.b.apiErr("listing "+k.resource, err)})
					return
				}
				pause = backoff(pause)
				continue
			}
			if !send(kindEvent{k: k, replace: items, replaced: true}) {
				return
			}
			rv, relist = newRV, false
		}
		w, err := k.watch(ctx, metav1.ListOptions{LabelSelector: f.sel, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return
			case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
				relist, pause = true, 0
			case transient(err):
				pause = backoff(pause)
			default:
				send(kindEvent{k: k, err: f.b.apiErr("watching "+k.resource, err)})
				return
			}
			continue
		}
		opened := time.Now()
		pause = 0
	events:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					// The server ended the watch (its timeout, a restart):
					// open it again from rv, at once unless it keeps ending
					// as soon as it is open.
					w.Stop()
					if time.Since(opened) < time.Second {
						pause = backoff(pause)
					}
					break events
				}
				if ev.Type == watch.Error {
					err := apierrors.FromObject(ev.Object)
					w.Stop()
					if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
						relist = true
					} else if !transient(err) {
						send(kindEvent{k: k, err: f.b.apiErr("watching "+k.resource, err)})
						return
					} else {
						pause = backoff(pause)
					}
					break events
				}
				if v := rvOf(ev.Object); v != "" {
					rv = v
				}
				if ev.Type == watch.Bookmark {
					continue
				}
				if !send(kindEvent{k: k, ev: ev}) {
					w.Stop()
					return
				}
			}
		}
	}
}

func backoff(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return 500 * time.Millisecond
	case d >= 16*time.Second:
		return 30 * time.Second
	default:
		return 2 * d
	}
}

// apply updates the copy with one event; an error event ends following.
func (f *follower) apply(e kindEvent) error {
	switch {
	case e.err != nil:
		return e.err
	case e.replaced:
		e.k.objs = map[string]runtime.Object{}
		for _, o := range e.replace {
			e.k.objs[nameOf(o)] = o
		}
	case e.ev.Type == watch.Deleted:
		delete(e.k.objs, nameOf(e.ev.Object))
	case e.ev.Type == watch.Added || e.ev.Type == watch.Modified:
		e.k.objs[nameOf(e.ev.Object)] = e.ev.Object
	}
	return nil
}

// next waits for a change (then takes every change already queued, so a
// burst of pod updates is looked at once) or for ctx to end.
func (f *follower) next(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case e := <-f.events:
		if err := f.apply(e); err != nil {
			return err
		}
	}
	for {
		select {
		case e := <-f.events:
			if err := f.apply(e); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func kept[T any](f *follower, resource string) []*T {
	for _, k := range f.kinds {
		if k.resource != resource {
			continue
		}
		out := make([]*T, 0, len(k.objs))
		for _, o := range k.objs {
			if t, ok := any(o).(*T); ok {
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
