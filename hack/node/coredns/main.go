// CoreDNS for the local cluster's real node, with only the plugins its Corefile uses
// (hack/node/coredns.yaml): cluster names from the API server, health and readiness,
// a cache, and NXDOMAIN for every other name, since the machine has no upstream resolver.
// hack/build-cluster-tools.sh node copies this file into a consumer module of CoreDNS.
package main

import (
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() {
	coremain.Run()
}
