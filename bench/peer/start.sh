#!/bin/sh
# Usage: start.sh DIR — builds the peer if needed, starts etcd and the
# apiextensions-apiserver on loopback with their state under DIR, waits until
# both are ready, and writes DIR/kubeconfig.
set -eu
if [ $# -ne 1 ]; then echo "usage: $0 DIR" >&2; exit 2; fi
here=$(cd "$(dirname "$0")" && pwd)
"$here/build.sh"
exec "$here/bin/peerctl" start -bin "$here/bin" "$1"
