#!/usr/bin/env bash
# The README's test command: every test of the project, in one run.
#   1. the Rust workspace (training included), with cargo-nextest;
#   2. each suite under scripts/test.d/ (named NN-what.sh, run in order), for the parts that need
#      more than cargo: a server started for the tests, a Python package and its reference.
# Each suite installs what it needs or, with VISAGE_REQUIRE_DATA=1 (CI), fails when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --workspace --release --features visage-cli/train "$@"
for suite in scripts/test.d/*.sh; do
  [ -e "$suite" ] || continue
  echo "== $(basename "$suite") =="
  bash "$suite"
done
