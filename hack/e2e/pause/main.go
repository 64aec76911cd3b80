// Command pause is the e2e cluster's pod sandbox image: it holds a pod's
// namespaces and waits for SIGTERM or SIGINT. The cluster has no registry, so
// the usual pause image cannot be pulled; this one is built from source by
// hack/e2e/run.sh.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
