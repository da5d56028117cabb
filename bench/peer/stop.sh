#!/bin/sh
# Usage: stop.sh DIR — stops the apiserver and etcd started by start.sh DIR.
set -eu
if [ $# -ne 1 ]; then echo "usage: $0 DIR" >&2; exit 2; fi
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/bin/peerctl" stop "$1"
