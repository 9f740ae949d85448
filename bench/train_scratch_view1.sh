#!/bin/bash
# From-scratch experiments on LFW View 1 (train peopleDevTrain, test pairsDevTest).
# Needs: cargo build --release -p visage-cli --features train. Writes under $OUT (default target/exp).
cd "$(dirname "$0")/.."
mkdir -p "${OUT:-target/exp}"
L=${LFW:-../shared/data/lfw}
V=./target/release/visage
R=${OUT:-target/exp}/results.txt
echo "== dlib baseline on pairsDevTest $(date)" >> $R
/usr/bin/time -f "%e s wall" $V eval lfw --images $L/images --pairs $L/pairsDevTest.txt -q >> $R 2>&1
for m in batch-all semi-hard batch-hard; do
  echo "== scratch $m $(date)" >> $R
  /usr/bin/time -f "%e s wall" $V train embedder --data $L/images --people $L/peopleDevTrain.txt --out ${OUT:-target/exp}/scratch-$m.safetensors --mining $m --steps 4000 --p 16 --k 4 --checkpoint-every 500 --plot ${OUT:-target/exp}/scratch-$m.png -q >> $R 2>&1
  /usr/bin/time -f "%e s wall" $V --model ${OUT:-target/exp}/scratch-$m.safetensors eval lfw --images $L/images --pairs $L/pairsDevTest.txt -q >> $R 2>&1
done
echo "== done $(date)" >> $R
