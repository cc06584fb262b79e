// Command ocireg-tool is the local container registry tool for Yocto
// builds: it generates the helper script and target payloads, serves the
// registry and does every registry operation. This package only wires the
// command line to packages generator and tasks.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ()))
}
