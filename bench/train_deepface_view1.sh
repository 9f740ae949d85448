#!/bin/bash
# The DeepFace-style network (locally connected layers, --arch deepface) from scratch on LFW
# View 1 (train peopleDevTrain, test pairsDevTest) with DeepFace's loss, softmax over the
# training people: the recipe of bench/train_softmax_view1.sh (64x64 chips, P=16 x K=4, Adam
# 1e-3 with a cosine, 4,000 steps, seed 1), with the 512-wide representation layer.
# Needs: cargo build --release -p visage-cli --features train. Writes under $OUT (default
# target/exp). VISAGE=path runs another build of the binary (a copy, so rebuilding the
# workspace during the run changes nothing).
cd "$(dirname "$0")/.."
OUT=${OUT:-target/exp}
mkdir -p "$OUT"
L=${LFW:-../shared/data/lfw}
V=${VISAGE:-./target/release/visage}
R=$OUT/results-deepface.txt
echo "== deepface softmax $(date)" >> $R
/usr/bin/time -f "%e s wall" $V train embedder --arch deepface --data $L/images --people $L/peopleDevTrain.txt --out $OUT/deepface-softmax.safetensors --loss softmax --steps 4000 --p 16 --k 4 --checkpoint-every 250 --resume --plot $OUT/deepface-softmax.png -q >> $R 2>&1
/usr/bin/time -f "%e s wall" $V --model $OUT/deepface-softmax.safetensors eval lfw --images $L/images --pairs $L/pairsDevTest.txt -q >> $R 2>&1
/usr/bin/time -f "%e s wall" $V --model $OUT/deepface-softmax.safetensors eval lfw --images $L/images --pairs $L/pairsDevTest.txt --metric chi2 -q >> $R 2>&1
echo "== done $(date)" >> $R
