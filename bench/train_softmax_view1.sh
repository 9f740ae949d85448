#!/bin/bash
# Softmax from scratch on LFW View 1 (train peopleDevTrain, test pairsDevTest), then the same
# network fine-tuned with the triplet loss: the recipe of bench/train_scratch_view1.sh (small
# CNN, 64x64 chips, P=16 x K=4, Adam 1e-3 with a cosine, 4,000 steps, seed 1) with --loss
# softmax, then 2,000 batch-all triplet steps at 1e-4 from it (--init).
# Needs: cargo build --release -p visage-cli --features train. Writes under $OUT (default target/exp).
cd "$(dirname "$0")/.."
OUT=${OUT:-target/exp}
mkdir -p "$OUT"
L=${LFW:-../shared/data/lfw}
V=./target/release/visage
R=$OUT/results-softmax.txt
echo "== scratch softmax $(date)" >> $R
/usr/bin/time -f "%e s wall" $V train embedder --data $L/images --people $L/peopleDevTrain.txt --out $OUT/scratch-softmax.safetensors --loss softmax --steps 4000 --p 16 --k 4 --checkpoint-every 500 --plot $OUT/scratch-softmax.png -q >> $R 2>&1
/usr/bin/time -f "%e s wall" $V --model $OUT/scratch-softmax.safetensors eval lfw --images $L/images --pairs $L/pairsDevTest.txt -q >> $R 2>&1
echo "== softmax then batch-all triplet $(date)" >> $R
/usr/bin/time -f "%e s wall" $V train embedder --data $L/images --people $L/peopleDevTrain.txt --out $OUT/softmax-triplet.safetensors --init $OUT/scratch-softmax.safetensors --mining batch-all --lr 1e-4 --steps 2000 --p 16 --k 4 --checkpoint-every 500 --plot $OUT/softmax-triplet.png -q >> $R 2>&1
/usr/bin/time -f "%e s wall" $V --model $OUT/softmax-triplet.safetensors eval lfw --images $L/images --pairs $L/pairsDevTest.txt -q >> $R 2>&1
echo "== done $(date)" >> $R
