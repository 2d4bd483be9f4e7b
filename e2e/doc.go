// Package e2e holds the end-to-end suites: both runtime images built by
// fsbuild (package builder/build) into the Docker engine, started as
// containers with testcontainers-go or through the launcher's Docker
// backend, running whole federated jobs on real MNIST data.
//
// Everything lives in the test files; `make e2e` runs them (and `make test`
// runs them with the rest). See the README's "End-to-end tests" section.
package e2e
