package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/internal/kubetest"
	"github.com/fedscale/fedscale-go/launcher/backend"
)

// rbacNamespace holds the RBAC test's jobs and accounts.
const rbacNamespace = "fedscale-rbac"

// life runs what the launcher's commands do with a job, in order, as the
// identity of kubeconfig kc: submit, wait until running, status, list,
// logs (kwok's nodes serve none: only a refusal counts), stop. It returns
// the first error.
func life(t *testing.T, kc, ns, name string) error {
	t.Helper()
	b, err := New(Options{Kubeconfig: kc, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := testSpec(t, jobParams{name: name, executors: 2})
	if err := b.Submit(ctx, s); err != nil {
		return err
	}
	if _, err := b.Wait(ctx, name, backend.UntilRunning); err != nil {
		return err
	}
	if _, err := b.Status(ctx, name); err != nil {
		return err
	}
	if _, err := b.LookAll(ctx); err != nil {
		return err
	}
	// A refusal comes before the API server dials the node: a short
	// bound spares the wait for kwok's nodes, which never answer.
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	err = b.Logs(lctx, name, backend.LogOptions{Tail: 1}, io.Discard)
	lcancel()
	if apierrors.IsForbidden(err) {
		return err
	}
	return b.Stop(ctx, name)
}

// TestKubeRBAC: the launcher's whole job life works as a ServiceAccount
// bound to rbac.yaml's Role alone, and fails, with Forbidden naming the
// namespace, when any one verb of it is missing: the manifest is what the
// launcher needs, no less (and every verb is used). Two verbs are not
// removed: pods' delete, which stop needs only for a pod that appears
// after its collection delete, and services/proxy's get, which status uses
// for the round and top-1 and goes on without (kwok's pods serve nothing to
// read anyway), and persistentvolumeclaims' get, for jobs with
// k8s.data_pvc only (TestKubeMissingClaim). A namespace the account has no Role in is
// refused at submit's first request.
func TestKubeRBAC(t *testing.T) {
	admin := infratest.Kube(t)
	adminB, _ := kube(t, rbacNamespace)
	cleanup := func(name string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := adminB.Stop(ctx, name); err != nil && !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("cleanup of %s: %v", name, err)
		}
	}

	kc := kubetest.As(t, admin, rbacNamespace, RBAC, nil)
	name := "rbac-all"
	err := life(t, kc, rbacNamespace, name)
	cleanup(name)
	if err != nil {
		t.Fatalf("with rbac.yaml's Role: %v", err)
	}

	// Another namespace: one clear refusal.
	other := fmt.Sprintf("fedscale-rbac-other-%d", time.Now().UnixNano()%1e6)
	err = life(t, kc, other, "rbac-other")
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "in namespace "+other+": not allowed") || !strings.Contains(err.Error(), `cannot get resource "jobs"`) {
		t.Errorf("submit to %s: %v, want Forbidden naming the namespace and the verb", other, err)
	}

	if testing.Short() {
		return
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(RBAC, &role); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, rule := range role.Rules {
		for _, res := range rule.Resources {
			for _, verb := range rule.Verbs {
				if res == "pods" && verb == "delete" || res == "services/proxy" || res == "persistentvolumeclaims" {
					continue
				}
				i++
				res, verb, group := res, verb, rule.APIGroups[0]
				t.Run(res+"-"+verb, func(t *testing.T) {
					kc := kubetest.As(t, admin, rbacNamespace, RBAC, func(r *rbacv1.Role) { r.Rules = without(r.Rules, group, res, verb) })
					name := fmt.Sprintf("rbac-%d", i)
					err := life(t, kc, rbacNamespace, name)
					cleanup(name)
					if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "in namespace "+rbacNamespace) {
						t.Fatalf("without %s on %s: %v, want Forbidden", verb, res, err)
					}
					t.Logf("without %s on %s: %v", verb, res, err)
				})
			}
		}
	}
}

// without is rules less one verb on one resource.
func without(rules []rbacv1.PolicyRule, group, res, verb string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		if !slices.Contains(r.APIGroups, group) || !slices.Contains(r.Resources, res) {
			out = append(out, r)
			continue
		}
		others := slices.DeleteFunc(slices.Clone(r.Resources), func(s string) bool { return s == res })
		if len(others) > 0 {
			out = append(out, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: others, Verbs: r.Verbs})
		}
		if verbs := slices.DeleteFunc(slices.Clone(r.Verbs), func(s string) bool { return s == verb }); len(verbs) > 0 {
			out = append(out, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: []string{res}, Verbs: verbs})
		}
	}
	return out
}

// TestKubeMissingClaim: a k8s.data_pvc the namespace does not have is
// refused at submit, naming the key and the claim, before anything is made.
func TestKubeMissingClaim(t *testing.T) {
	b, cs := kube(t, testNamespace)
	const name = "it-noclaim"
	s := testSpec(t, jobParams{name: name, top: "k8s: {data_pvc: fedscale-no-such-claim}"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := b.Submit(ctx, s)
	if err == nil || !strings.Contains(err.Error(), "k8s.data_pvc fedscale-no-such-claim: no PersistentVolumeClaim fedscale-no-such-claim in namespace "+testNamespace) {
		t.Fatalf("submit: %v", err)
	}
	if got := labelled(t, cs, testNamespace, name); len(got) != 0 {
		t.Errorf("a refused submit left %v", got)
	}
}
