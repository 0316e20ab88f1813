#!/usr/bin/env bash
# Direct-call throughput of one worker before and after its shard holds a
# million accounts, the worker's own RSS, and its restart to serving, on one
# localnet (docs/performance.md, issue 13). The node runs in `localnet
# --workers 0` and the worker as its own integritee-worker process, so the
# load report gives node, worker and enclave apart.
# Usage: [TRANSPORT=ws] [SENDERS=192] [N=20000] scripts/perf-million.sh
# (builds integritee-cli and integritee-worker into a temp dir; needs free
# loopback ports 46657, 42000 and 42001, and curl). TRANSPORT is load direct's --transport
# (http, its default, or ws), SENDERS its --concurrency, N its --n.
set -euo pipefail
bin=$(mktemp -d)
dir=$(mktemp -d)
trap 'rm -rf "$bin" "$dir"' EXIT
go build -o "$bin/" ./cmd/integritee-cli ./cmd/integritee-worker
cli=$bin/integritee-cli
node=http://127.0.0.1:46657 worker=http://127.0.0.1:42000
"$cli" localnet --dir "$dir/net" --workers 0 --demo=false --liveness 0 --node-rpc 127.0.0.1:46657 >"$dir/localnet.log" 2>&1 &
net=$!
wpid=
stop() {
	[ -n "$wpid" ] && kill -INT "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
	kill -INT $net 2>/dev/null
	wait $net 2>/dev/null
	rm -rf "$bin" "$dir"
}
trap stop EXIT
until grep -q "localnet running" "$dir/localnet.log"; do
	kill -0 $net || { cat "$dir/localnet.log"; exit 1; }
	sleep 1
done
start_worker() {
	"$bin/integritee-worker" --dev --node $node --enclave "$dir/net/bin/integritee-enclave" --data "$dir/worker" \
		--rpc 127.0.0.1:42000 --rpc-rate 1000000 --rpc-burst 1000000 --rpc-max-conns-per-ip 16384 --rpc-max-conns 20000 \
		--metrics-addr 127.0.0.1:42001 >"$dir/worker.log" 2>&1 &
	wpid=$!
}
ready() { until grep -q "worker ready" "$dir/worker.log"; do kill -0 "$wpid" || { cat "$dir/worker.log"; exit 1; }; sleep 0.05; done; }
rss() { echo "-- worker process $(grep -E 'VmRSS|VmHWM|RssAnon|RssFile' /proc/"$wpid"/status | tr -s ' \n' ' ')"; }
start_worker
ready
for _ in $(seq 1 60); do
	"$cli" load direct --n 20 --concurrency 4 --node $node --worker $worker >/dev/null 2>&1 && break
	sleep 2
done
run() {
	echo "== $1, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"$cli" load direct --n "${N:-20000}" --concurrency "${SENDERS:-192}" --node $node --worker $worker --tag "$2" \
		${3:+--recipients $3} ${TRANSPORT:+--transport $TRANSPORT}
}
# The first run of a fresh network is slower (the store's file and the
# processes' heaps still grow): a warm-up, not counted.
run "warm-up" w0
run "small state, run 1" s1
run "small state, run 2" s2
echo "== creating 1,000,000 accounts"
"$cli" trusted dev-accounts --n 1000000 --node $node --worker $worker | tail -1
# The store folds the two million new entries into its state file in the
# background: the runs measure the state, not that one-off fold (which
# the first run after provisioning pays for).
unfolded() { curl -s http://127.0.0.1:42001/metrics | awk '/^integritee_worker_store_unfolded_changes/ {print int($2)}'; }
t0=$(date +%s%N)
until u=$(unfolded) && [ -n "$u" ] && [ "$u" -le 262144 ]; do
	kill -0 "$wpid" || { cat "$dir/worker.log"; exit 1; }
	[ $((($(date +%s%N) - t0) / 1000000000)) -lt 300 ] || { echo "the fold did not catch up in 300 s (unfolded: ${u:-no metrics})"; exit 1; }
	sleep 0.2
done
echo "-- the new entries folded into the state file after $((($(date +%s%N) - t0) / 1000000)) ms"
rss
run "1M accounts, run 1" m1
run "1M accounts, run 2" m2
# Each call to a random one of the million: its changes land all over the
# state's tree instead of on the senders' and one recipient's pages.
run "1M accounts, calls to random accounts, run 1" r1 1000000
run "1M accounts, calls to random accounts, run 2" r2 1000000
rss
echo "== restart: SIGINT, then start again"
kill -INT "$wpid"
wait "$wpid" || true
du -sh "$dir/worker"
t0=$(date +%s%N)
start_worker
ready
echo "-- serving after $((($(date +%s%N) - t0) / 1000000)) ms"
rss
