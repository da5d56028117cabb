#!/bin/sh
# Builds etcd, apiextensions-apiserver and peerctl into bench/peer/bin.
# The Kubernetes version is stamped so that kubectl accepts the server's version.
set -eu
cd "$(dirname "$0")"
KUBE_VERSION=v1.37.2
LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	LDFLAGS="$LDFLAGS -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=37 -X $pkg.gitTreeState=clean"
done
mkdir -p bin
go build -ldflags "$LDFLAGS" -o bin/ ./cmd/...
