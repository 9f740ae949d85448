#!/usr/bin/env bash
# The Python package (crates/visage-python): `pip install ./crates/visage-python` into a virtual
# environment that also holds the reference (face_recognition on dlib-bin, as the benchmarks
# use it) and pytest, then its test suite. Needs python3 with venv and pip, and the network
# for the reference's wheels on the first run. The venv lives in target/python-venv
# (VISAGE_PY_VENV overrides); the Rust build goes to target/ (CARGO_TARGET_DIR overrides).
# Without python3 it skips, unless VISAGE_REQUIRE_DATA=1 (CI), where it fails; the tests
# themselves fail rather than skip there when the data, the models or the reference is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
start=$(date +%s)
if ! command -v python3 >/dev/null || ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  if [ "${VISAGE_REQUIRE_DATA:-}" = 1 ]; then echo "20-python: python3 with venv and pip is required" >&2; exit 1; fi
  echo "20-python: skipped (no python3 with venv and pip)"; exit 0
fi
venv="${VISAGE_PY_VENV:-$root/target/python-venv}"
bash scripts/reference-env.sh "$venv"
"$venv/bin/pip" install -q pytest "maturin>=1.5,<2"
export PATH="$venv/bin:$PATH"  # maturin's build hook runs the `maturin` it installed
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# The CLI the round-trip tests talk to (already built by the quick start and the workspace tests).
bin="${VISAGE_BIN:-$CARGO_TARGET_DIR/release/visage}"
[ -x "$bin" ] || cargo build --release -p visage-cli
# The one-command install; the build shares the target folder with the workspace (same profile).
"$venv/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps ./crates/visage-python
# face_recognition's default landmarks are the 68-point model, which `visage models fetch`
# leaves out by default: install it (a no-op when every model is there and verified).
"$venv/bin/python" -m visage fetch
cd crates/visage-python/tests
VISAGE_BIN="$bin" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" .
echo "20-python: done in $(( $(date +%s) - start )) s"
