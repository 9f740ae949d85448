#!/usr/bin/env bash
# Transfer learning on LFW View 1: dlib's pretrained ResNet-29 fine-tuned on peopleDevTrain
# (`visage train finetune`), tested on pairsDevTest (people never trained on), beside the
# pretrained network on the same pairs. Every configuration run is reported; none was picked
# by its test figure. Needs a build with the train feature:
#   cargo build --release -p visage-cli --features train
# Usage: bench/finetune_view1.sh [OUT_DIR]   (default target/ft; results in OUT_DIR/results.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
V=target/release/visage
L=${VISAGE_SHARED:-../shared}/data/lfw
OUT=${1:-target/ft}
mkdir -p "$OUT"
R=$OUT/results.txt
: > "$R"
echo "== pretrained dlib ResNet-29 on pairsDevTest" >> "$R"
/usr/bin/time -f "%e s wall" $V eval lfw --images $L/images --pairs $L/pairsDevTest.txt -q >> "$R" 2>&1
for blocks in 0 1 4; do
  m=$OUT/ft-b$blocks.safetensors
  echo "== fine-tuned, --train-blocks $blocks" >> "$R"
  /usr/bin/time -f "%e s wall" $V -q train finetune --data $L/images --people $L/peopleDevTrain.txt --out $m \
    --train-blocks $blocks --steps 2000 --cache $OUT/chips --plot $OUT/ft-b$blocks.png >> "$R" 2>&1
  /usr/bin/time -f "%e s wall" $V --model $m eval lfw --images $L/images --pairs $L/pairsDevTest.txt -q >> "$R" 2>&1
done
cat "$R"
