// Command kubectl is upstream kubectl built from k8s.io/kubectl at the
// client-go version of the end-to-end suite, so the suite can drive the
// server with the real command line without installing anything. It lives
// in its own module so that the suite's module does not compile kubectl's
// dependencies for every vet and test run.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		cmdutil.CheckErr(err)
	}
}
