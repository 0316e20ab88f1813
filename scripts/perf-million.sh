#!/usr/bin/env bash
# Direct-call throughput of one worker before and after its shard holds a
# million accounts, on one localnet (docs/performance.md, issue 13).
# Usage: scripts/perf-million.sh   (builds integritee-cli into a temp dir;
# needs free loopback ports 46657 and 42000).
set -euo pipefail
bin=$(mktemp -d)
dir=$(mktemp -d)
trap 'rm -rf "$bin" "$dir"' EXIT
go build -o "$bin/" ./cmd/integritee-cli
cli=$bin/integritee-cli
node=http://127.0.0.1:46657 worker=http://127.0.0.1:42000
"$cli" localnet --dir "$dir" --workers 1 --demo=false --liveness 0 --node-rpc 127.0.0.1:46657 --worker-rpc-port 42000 \
	--worker-rpc-rate 1000000 --worker-rpc-burst 1000000 --worker-rpc-max-conns-per-ip 16384 --worker-rpc-max-conns 20000 \
	>"$dir/localnet.log" 2>&1 &
net=$!
trap 'kill -INT $net 2>/dev/null; wait $net 2>/dev/null; rm -rf "$bin" "$dir"' EXIT
for _ in $(seq 1 120); do
	"$cli" load direct --n 20 --concurrency 4 --node $node --worker $worker >/dev/null 2>&1 && break
	sleep 3
done
run() {
	echo "== $1, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"$cli" load direct --n 20000 --concurrency 192 --node $node --worker $worker --tag "$2" ${3:+--recipients $3}
}
run "small state, run 1" s1
run "small state, run 2" s2
echo "== creating 1,000,000 accounts"
"$cli" trusted dev-accounts --n 1000000 --node $node --worker $worker | tail -1
run "1M accounts, run 1" m1
run "1M accounts, run 2" m2
# Each call to a random one of the million: its changes land all over the
# state's tree instead of on the senders' and one recipient's pages.
run "1M accounts, calls to random accounts, run 1" r1 1000000
run "1M accounts, calls to random accounts, run 2" r2 1000000
