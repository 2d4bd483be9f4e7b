package k8s

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// The follower on client-go's informers, against client-go's fake
// clientset (the real API server's behaviour is TestKubeOwnerCascade's and
// the lifecycle tests'): a change wakes next, an error no retry can fix
// comes back at once, a transient one is retried.
func TestFollower(t *testing.T) {
	forbidden := func(verb, res string) k8stesting.ReactionFunc {
		return func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: res}, "", nil)
		}
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "j"}}}
	}
	t.Run("change", func(t *testing.T) {
		cs := fake.NewClientset(pod("p0"))
		b := &Backend{cs: cs, ns: "ns", server: "fake"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		f, err := b.follow(ctx, "app=j", followPods|followJobs)
		if err != nil {
			t.Fatal(err)
		}
		defer f.stop()
		if n := len(f.pods()); n != 1 {
			t.Fatalf("%d pods after the first list, want 1", n)
		}
		if _, err := cs.CoreV1().Pods("ns").Create(ctx, pod("p1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for len(f.pods()) != 2 {
			if err := f.next(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("forbidden list", func(t *testing.T) {
		cs := fake.NewClientset()
		cs.PrependReactor("list", "jobs", forbidden("list", "jobs"))
		b := &Backend{cs: cs, ns: "ns", server: "fake"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		_, err := b.follow(ctx, "app=j", followJobs|followPods)
		if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "Jobs") {
			t.Fatalf("follow = %v, want a forbidden error naming Jobs", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s: the forbidden list was retried", d)
		}
	})
	t.Run("forbidden watch", func(t *testing.T) {
		cs := fake.NewClientset()
		cs.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
		})
		b := &Backend{cs: cs, ns: "ns", server: "fake"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		f, err := b.follow(ctx, "app=j", followPods)
		if err == nil {
			defer f.stop()
			for err == nil {
				err = f.next(ctx)
			}
		}
		if !apierrors.IsForbidden(err) {
			t.Fatalf("got %v, want the forbidden watch", err)
		}
	})
	t.Run("transient watch", func(t *testing.T) {
		cs := fake.NewClientset(pod("p0"))
		var mu sync.Mutex
		failed := 0
		cs.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
			mu.Lock()
			defer mu.Unlock()
			if failed == 0 {
				failed++
				return true, nil, apierrors.NewServiceUnavailable("restarting")
			}
			return false, nil, nil
		})
		b := &Backend{cs: cs, ns: "ns", server: "fake"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		f, err := b.follow(ctx, "app=j", followPods)
		if err != nil {
			t.Fatal(err)
		}
		defer f.stop()
		if _, err := cs.CoreV1().Pods("ns").Create(ctx, pod("p1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for len(f.pods()) != 2 {
			if err := f.next(ctx); err != nil {
				t.Fatalf("a transient watch error was not retried: %v", err)
			}
		}
	})
	t.Run("first list fails", func(t *testing.T) {
		cs := fake.NewClientset()
		cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewServiceUnavailable("restarting")
		})
		b := &Backend{cs: cs, ns: "ns", server: "fake"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := b.follow(ctx, "app=j", followPods); !apierrors.IsServiceUnavailable(err) {
			t.Fatalf("follow = %v, want the first list's error", err)
		}
	})
}
