#!/usr/bin/env bash
# visage on a fresh machine: build, fetch and verify the models, then run the main job on the
# embedded (SQLite) gallery -- enroll two people from one photo each and identify the faces
# in other photos, including people who were never enrolled.
#
# Needs: cargo, python3 with pip (models and sample photos come from PyPI source packages).
# Writes only under target/ and the model folder (VISAGE_MODELS or ~/.local/share/visage/models).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building visage (release) =="
cargo build --release -p visage-cli
V=target/release/visage

echo "== models =="
"$V" models fetch
"$V" models verify

echo "== sample photos (face_recognition 1.3.0's test images, MIT licence, via pip) =="
SAMPLES=target/samples
if [ ! -f "$SAMPLES/obama.jpg" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: face_recognition==1.3.0 -d "$tmp"
  tar xzf "$tmp/face_recognition-1.3.0.tar.gz" -C "$tmp"
  mkdir -p "$SAMPLES"
  cp "$tmp"/face_recognition-1.3.0/tests/test_images/*.jpg "$tmp"/face_recognition-1.3.0/tests/test_images/*.png "$SAMPLES"/
  cp "$tmp"/face_recognition-1.3.0/LICENSE "$SAMPLES"/LICENSE.face_recognition
  rm -rf "$tmp"
fi
ls "$SAMPLES"

echo "== one-shot enrollment: one photo per person =="
G=target/quickstart/gallery.db
rm -f "$G" "$G-wal" "$G-shm"
"$V" --gallery "$G" enroll obama "$SAMPLES/obama.jpg"
"$V" --gallery "$G" enroll biden "$SAMPLES/biden.jpg"
"$V" --gallery "$G" subjects list

echo "== identify (1:N): who is in these photos? =="
UNKNOWN=()
# Faces of people never enrolled, when the shared test data is beside the checkout.
[ -f ../shared/oracle/images/t1.jpg ] && UNKNOWN+=(../shared/oracle/images/t1.jpg)
"$V" --gallery "$G" identify --top 2 "$SAMPLES/obama2.jpg" "$SAMPLES/obama3.jpg" "$SAMPLES/32bit.png" "${UNKNOWN[@]}"

echo "== verify (1:1): is this obama? is it biden? =="
"$V" --gallery "$G" verify obama "$SAMPLES/obama2.jpg"
"$V" --gallery "$G" verify biden "$SAMPLES/obama2.jpg" || echo "(exit code $? -- no match, as expected)"
