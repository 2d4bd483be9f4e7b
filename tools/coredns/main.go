// Command coredns is CoreDNS with only the plugins the test node's cluster
// DNS needs (internal/devinfra runs it as a host process bound to the node
// address): the stock build's plugin list pulls in the AWS, Azure and GCP
// SDKs. The order of the imports does not matter: the Corefile's server
// blocks name the plugins, and CoreDNS orders them by its own plugin.cfg.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() { coremain.Run() }
