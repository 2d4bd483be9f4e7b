// Package e2e holds the end-to-end suites: images built by fsbuild, started
// as containers with testcontainers-go, running whole federated jobs.
package e2e

// Placeholder: pins the testcontainers-go dependency set until the suites land.
import (
	_ "github.com/testcontainers/testcontainers-go"
	_ "github.com/testcontainers/testcontainers-go/network"
	_ "github.com/testcontainers/testcontainers-go/wait"
)
