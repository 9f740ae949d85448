#!/usr/bin/env bash
# Milvus against the embedded HNSW (crates/visage-gallery-milvus/benches/milvus.rs), on a fresh
# milvus==2.3.5 standalone server run in a network namespace with only loopback, as the tests do.
#   BENCH_SIZES=100000,1000000 ./scripts/bench-milvus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
venv="$target/milvus-venv"
[ -x "$venv/bin/milvus-server" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q milvus==2.3.5; }
if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
cargo bench -p visage-gallery-milvus --bench milvus --no-run
MILVUS_BIN="$venv/bin/milvus-server" "${ns[@]}" bash -euo pipefail -c '
  ip link set lo up
  data=$(mktemp -d -t visage-milvus.XXXXXX)
  "$MILVUS_BIN" --data "$data" >"$data.log" 2>&1 &
  pid=$!
  trap "kill -INT $pid; wait $pid || true; rm -rf $data $data.log $data.peak" EXIT
  for _ in $(seq 240); do curl -sf http://127.0.0.1:9091/healthz >/dev/null && break; sleep 0.5; done
  # The server processes peak resident memory (the wrapper and its children), sampled every 5 s.
  ( peak=0; while kill -0 $pid 2>/dev/null; do
      r=$(ps -o rss= -p $pid --ppid $pid | awk "{s+=\$1} END {print s+0}")
      if [ "$r" -gt "$peak" ]; then peak=$r; echo $peak >"$data.peak"; fi
      sleep 5
    done ) &
  VISAGE_MILVUS=milvus://127.0.0.1:19530 cargo bench --offline -p visage-gallery-milvus --bench milvus
  echo "Milvus server peak resident memory: $(( $(cat "$data.peak") / 1024 )) MiB"
'
