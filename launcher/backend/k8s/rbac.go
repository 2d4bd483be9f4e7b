package k8s

import _ "embed" // RBAC

// RBAC is rbac.yaml: the Role the launcher needs in a job's namespace (the
// verbs it calls, no more), for operators to apply and for the tests to
// run the launcher with exactly these rights.
//
//go:embed rbac.yaml
var RBAC []byte
