#!/bin/bash
# visage (burn) and PyTorch side by side on the from-scratch recipe of TRAINING.md (small CNN,
# triplet loss, LFW View 1: train peopleDevTrain, test pairsDevTest): for each mining strategy,
# `visage train embedder`, then bench/pytorch_scratch_view1.py on the same chips, batches and
# augmentation draws, each on 2 threads, each model evaluated by `visage --model FILE eval lfw`.
# Needs: cargo build --release -p visage-cli --features train, and torch + numpy in
# target/torch-venv (or BENCH_PYTHON). Writes the models, logs and JSON outputs under $OUT
# (default target/exp/pytorch) and the table to $OUT/../results-pytorch.txt.
# MININGS (default "batch-all batch-hard semi-hard"), STEPS (default 4000) and VISAGE (the
# binary, default target/release/visage) can be set.
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-target/exp/pytorch}
mkdir -p "$OUT" target/tmp
L=${LFW:-../shared/data/lfw}
V=${VISAGE:-./target/release/visage}
PY=${BENCH_PYTHON:-target/torch-venv/bin/python}
STEPS=${STEPS:-4000}
MININGS=${MININGS:-batch-all batch-hard semi-hard}
R=$OUT/../results-pytorch.txt
LOG=$OUT/run.log
DATA="--images $L/images --people $L/peopleDevTrain.txt"
echo "== $(date) checkout $(git rev-parse --short HEAD), $V, $($PY -c 'import torch; print("torch", torch.__version__)'), steps $STEPS" >> $LOG
rustc --edition 2015 -O bench/pytorch_scratch_view1_draws.rs -o target/tmp/pytorch_scratch_view1_draws 2>/dev/null
checked=
for m in $MININGS; do
  echo "== visage $m $(date)" >> $LOG
  /usr/bin/time -o $OUT/visage-$m.time -f "%e" $V --threads 2 train embedder --data $L/images --people $L/peopleDevTrain.txt \
    --out $OUT/visage-$m.safetensors --mining $m --steps $STEPS --p 16 --k 4 --checkpoint-every 500 --plot $OUT/visage-$m.png --json -q \
    > $OUT/visage-$m.train.json 2>> $LOG
  $V --model $OUT/visage-$m.safetensors eval lfw --images $L/images --pairs $L/pairsDevTest.txt --json -q > $OUT/visage-$m.eval.json 2>> $LOG
  if [ -z "$checked" ]; then  # the chips are cached now
    $PY bench/pytorch_scratch_view1.py $DATA --out /dev/null --steps $STEPS --check-draws target/tmp/pytorch_scratch_view1_draws | tee -a $LOG
    checked=1
  fi
  echo "== pytorch $m $(date)" >> $LOG
  /usr/bin/time -o $OUT/pytorch-$m.time -f "%e" $PY bench/pytorch_scratch_view1.py $DATA --out $OUT/pytorch-$m.safetensors \
    --mining $m --steps $STEPS --threads 2 > $OUT/pytorch-$m.train.json 2>> $LOG
  $V --model $OUT/pytorch-$m.safetensors embed --chip $OUT/pytorch-$m.check/*.png > $OUT/pytorch-$m.check.jsonl 2>> $LOG
  $PY bench/pytorch_scratch_view1.py compare-check $OUT/pytorch-$m.check $OUT/pytorch-$m.check.jsonl > $OUT/pytorch-$m.check.txt
  $V --model $OUT/pytorch-$m.safetensors eval lfw --images $L/images --pairs $L/pairsDevTest.txt --json -q > $OUT/pytorch-$m.eval.json 2>> $LOG
done
{
  echo "== $(date) bench/pytorch_scratch_view1.sh (checkout $(git rev-parse --short HEAD), $V) beside $($PY -c 'import torch; print("PyTorch", torch.__version__)'), $STEPS steps, 2 threads each"
  $PY bench/pytorch_scratch_view1.py summarize $OUT $MININGS
} | tee -a $R
echo "== done $(date)" >> $LOG
