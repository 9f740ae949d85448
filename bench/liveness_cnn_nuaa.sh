#!/usr/bin/env bash
# The CNN liveness candidates on NUAA, every one trained and then measured on the test list:
# the default (3 folds by subject), validation by session (each training session held out in
# turn, as the test list's session 3 is new), and the same with per-channel standardised crops.
# The choice among them is made on the validation figures, never on the test list's.
# Needs: cargo build --release -p visage-cli --features train.
# Usage: bench/liveness_cnn_nuaa.sh [OUT_DIR]   (default target/liv; results in OUT_DIR/cnn-results.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
V=target/release/visage
N=${VISAGE_SHARED:-../shared}/data/nuaa
OUT=${1:-target/liv}
mkdir -p "$OUT"
R=$OUT/cnn-results.txt
[ "${SKIP_SUBJECT:-}" = 1 ] || : > "$R"
run() {
  name=$1; shift
  echo "== $name: visage liveness train --kind cnn $*" >> "$R"
  /usr/bin/time -f "%e s wall" $V -q liveness train --kind cnn --data "$N" --out "$OUT/$name.safetensors" "$@" >> "$R" 2>&1
  $V -q liveness eval --data "$N" --liveness-model "$OUT/$name.safetensors" >> "$R" 2>&1
}
[ "${SKIP_SUBJECT:-}" = 1 ] || run cnn-subject
run cnn-session --split session
run cnn-session-std --split session --standardize
cat "$R"
