// Command seedfleet is one binary for Seedfleet: the seed node daemon and the
// device commands (and, with the operator, the controller manager).
package main

import (
	"os"

	"github.com/seedfleet/seedfleet/cmd"
)

func main() { os.Exit(cmd.Execute()) }
