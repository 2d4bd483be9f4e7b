// Package kubetest gives tests on the test cluster an identity with only
// the rights a Role manifest grants: a ServiceAccount bound to the Role,
// a token from the TokenRequest API and a kubeconfig that uses it, so a
// verb missing from the manifest fails the test as it would fail an
// operator's launcher.
package kubetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// As returns the path of a kubeconfig for a new ServiceAccount of
// namespace ns (created when missing, never deleted) bound to the Role of
// manifest, made in ns under a name of its own; edit, when not nil,
// changes the Role first (a test dropping a verb). admin is a kubeconfig
// allowed to do all that. It returns once the API server's authorizer
// grants the Role's rules; the test's end removes the account, the Role
// and the binding.
func As(t testing.TB, admin, ns string, manifest []byte, edit func(*rbacv1.Role)) string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(manifest, &role); err != nil || role.Kind != "Role" {
		t.Fatalf("RBAC manifest: want one Role (%v)", err)
	}
	if edit != nil {
		edit(&role)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s-%06d", role.Name, rand.IntN(1e6))
	role.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: ns, Labels: role.Labels}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = cs.RbacV1().RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.RbacV1().Roles(ns).Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.CoreV1().ServiceAccounts(ns).Delete(ctx, name, metav1.DeleteOptions{})
	})
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + name
	waitGranted(ctx, t, cs, user, ns, role.Rules)

	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	cur := raw.Contexts[raw.CurrentContext]
	if cur == nil || raw.Clusters[cur.Cluster] == nil {
		t.Fatalf("kubeconfig %s: no current context with a cluster", admin)
	}
	out := clientcmdapi.NewConfig()
	out.Clusters["test"] = raw.Clusters[cur.Cluster]
	out.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	out.Contexts[name] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name, Namespace: ns}
	out.CurrentContext = name
	path := filepath.Join(t.TempDir(), "kubeconfig-"+name)
	if err := clientcmd.WriteToFile(*out, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitGranted returns once user may do every verb of rules in ns: RBAC
// reaches the authorizer through its informers, a moment after the
// binding is created.
func waitGranted(ctx context.Context, t testing.TB, cs kubernetes.Interface, user, ns string, rules []rbacv1.PolicyRule) {
	t.Helper()
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				for _, v := range r.Verbs {
					ra := &authzv1.ResourceAttributes{Namespace: ns, Verb: v, Group: g, Resource: resource, Subresource: sub}
					for {
						sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
							Spec: authzv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}, ResourceAttributes: ra},
						}, metav1.CreateOptions{})
						if err != nil {
							t.Fatal(err)
						}
						if sar.Status.Allowed {
							break
						}
						select {
						case <-ctx.Done():
							t.Fatalf("%s is not granted %s %s/%s in %s after a minute: %s", user, v, g, res, ns, sar.Status.Reason)
						case <-time.After(50 * time.Millisecond):
						}
					}
				}
			}
		}
	}
}
