#!/usr/bin/env bash
# The Milvus gallery (crates/visage-gallery-milvus, `visage --gallery milvus://...` and
# `visage serve --milvus`) against a real server: PyPI's milvus==2.3.5 standalone server, installed into a venv under target/.
# It listens on every interface and has no option to bind loopback only, so it runs, with the
# tests that talk to it, inside a network namespace where only loopback is up; each run gets a
# fresh data directory (a restart on an old one misbehaves) and the server is stopped with
# SIGINT. Without VISAGE_REQUIRE_DATA=1 a machine that cannot install or isolate it skips this
# suite (saying so); with it, that fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
venv="$target/milvus-venv"
unavailable() {
  if [ "${VISAGE_REQUIRE_DATA:-}" = 1 ]; then echo "10-milvus: $1" >&2; exit 1; fi
  echo "10-milvus: skipped: $1 (VISAGE_REQUIRE_DATA=1 makes this an error)"; exit 0
}
if [ ! -x "$venv/bin/milvus-server" ]; then
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q milvus==2.3.5; } || unavailable "cannot install milvus==2.3.5 into $venv"
fi
command -v unshare >/dev/null && command -v ip >/dev/null && command -v curl >/dev/null || unavailable "needs unshare, ip and curl"
if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
"${ns[@]}" true 2>/dev/null || unavailable "cannot make a network namespace (${ns[*]})"
# Build with the network; run without it. The `visage` binary is built with its `milvus`
# feature for the command-line test (tests/gallery_milvus.rs) and the service's: every
# serve_api test again with each server's galleries in Milvus, and two servers sharing one
# gallery (tests/serve_milvus.rs).
cargo nextest run --release -p visage-gallery-milvus --no-run
cargo nextest run --release -p visage-cli --features milvus --test gallery_milvus --test serve_api --test serve_milvus --no-run
start=$(date +%s)
MILVUS_BIN="$venv/bin/milvus-server" "${ns[@]}" bash -euo pipefail -c '
  ip link set lo up
  data=$(mktemp -d -t visage-milvus.XXXXXX)
  "$MILVUS_BIN" --data "$data" >"$data.log" 2>&1 &
  pid=$!
  stop() { kill -INT "$pid" 2>/dev/null || true; for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done; kill -KILL "$pid" 2>/dev/null || true; rm -rf "$data" "$data.log"; }
  trap stop EXIT
  up=0
  for _ in $(seq 240); do
    if curl -sf http://127.0.0.1:9091/healthz >/dev/null; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ "$up" != 1 ]; then echo "10-milvus: the Milvus server did not become healthy; its log:" >&2; tail -40 "$data.log" >&2; exit 1; fi
  echo "10-milvus: milvus-server healthy"
  export VISAGE_MILVUS=milvus://127.0.0.1:19530
  status=0
  cargo nextest run --release --offline -p visage-gallery-milvus --no-fail-fast || status=1
  cargo nextest run --release --offline -p visage-cli --features milvus --test gallery_milvus --test serve_api --test serve_milvus --no-fail-fast || status=1
  exit $status
'
echo "10-milvus: done in $(( $(date +%s) - start )) s (server start and tests)"
