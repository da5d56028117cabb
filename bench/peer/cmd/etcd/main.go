// Command etcd runs etcd's own server, built from go.etcd.io/etcd/server/v3,
// so the benchmark compares against etcd without downloading a release binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
