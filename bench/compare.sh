#!/bin/sh
# compare.sh runs the benchmark against Setpoint and, when bench/peer/start.sh
# exists, against Kubernetes' custom-resource API server on etcd, $ROUNDS
# times interleaved (default 3), then prints the table of medians and
# ratios. Extra flags for every run come from $BENCH_ARGS (for example
# "-objects 100000"). Results go to $OUT (default results/compare/<date>).
#
# The peer's contract: `peer/start.sh DIR` builds the peer if needed,
# starts etcd and the API server with their data under DIR, writes
# DIR/kubeconfig and DIR/peer.json (with their "EtcdPID" and
# "APIServerPID"), and exits once the API server is ready; `peer/stop.sh
# DIR` stops them. Start-up is timed with peer/bin/peerctl, which start.sh
# runs after building. $PEER names another directory of such scripts
# (relative to bench/).
set -eu
cd "$(dirname "$0")"
peer=${PEER:-peer}
rounds=${ROUNDS:-3}
out=${OUT:-results/compare/$(date -u +%Y-%m-%dT%H%M%SZ)}
go build -o ../bin/bench .
mkdir -p "$out"

peer_run() {
	dir=$(mktemp -d)
	status=0
	"$peer/start.sh" "$dir" || status=$?
	if [ "$status" -eq 0 ]; then
		pids=$(sed -n 's/.*"\(EtcdPID\|APIServerPID\)": *\([0-9]*\).*/\2/p' "$dir/peer.json" | paste -sd, -)
		start="$peer/start.sh"
		if [ -x "$peer/bin/peerctl" ]; then
			start="$peer/bin/peerctl start -bin $peer/bin" # without the build start.sh runs first
		fi
		# shellcheck disable=SC2086 # BENCH_ARGS holds several flags
		../bin/bench -label kubernetes -out "$out" -kubeconfig "$dir/kubeconfig" -pids "$pids" \
			-start-cmd "$start \"\$BENCH_START_DIR\"" -stop-cmd "$peer/stop.sh \"\$BENCH_START_DIR\"" \
			${BENCH_ARGS:-} || status=$?
	fi
	"$peer/stop.sh" "$dir" || true
	rm -rf "$dir"
	return "$status"
}

i=1
while [ "$i" -le "$rounds" ]; do
	echo "compare: round $i of $rounds: setpoint" >&2
	# shellcheck disable=SC2086
	../bin/bench -label setpoint -out "$out" ${BENCH_ARGS:-}
	if [ -x "$peer/start.sh" ]; then
		echo "compare: round $i of $rounds: kubernetes" >&2
		peer_run
	fi
	i=$((i + 1))
done

if ! ls "$out"/*-kubernetes.json >/dev/null 2>&1; then
	echo "compare: no $peer/start.sh yet: Setpoint results only, in $out" >&2
	exit 0
fi
# Setpoint's runs first: ratios are Setpoint over Kubernetes.
files=$(printf '%s,' "$out"/*-setpoint.json "$out"/*-kubernetes.json)
../bin/bench -compare "${files%,}" -out "$out"
