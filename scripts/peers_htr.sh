#!/bin/bash
# htr on the peers' lines, measured exactly as ../shared/peers/run_peers.sh measures kraken, PyLaia and Calamari
# (same data, same bench.py for wall time / CPU / memory / progress-bar throughput, same cer.py).
#
#   bash ../shared/peers/run_peers.sh                      # peers first: generates $PEER_ROOT/data, writes $RES
#   RES=/tmp/peer/results/<that run> bash scripts/peers_htr.sh
#   python scripts/peers_report.py /tmp/peer/results/<that run>/results.jsonl   # table with ratios
#
# Variables: PEER_ROOT (/tmp/peer), TRAIN_S (600, wall-clock budget including start-up and preprocessing, as
# for the peers), HTR_MODEL (model group, default small), HTR_PY (python with htr installed), SKIP_TRAIN=1 (measure
# recognition again with the model a previous run of this script trained into $RES/htr/model), HTR_THREADS (training
# threads, 2), HTR_OVERRIDES (training overrides instead of model=$HTR_MODEL, e.g. "experiment=copiste_v1" for the
# Copiste recipe; data.root and the time budget are still set here).
# Equal time on 2 cores, one each: taskset -c 0 for the peer, HTR_THREADS=1 taskset -c 1 for htr, started together.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
ROOT=${PEER_ROOT:-/tmp/peer}
PEERS_DIR=${PEERS_DIR:-$REPO/../shared/peers}
DATA=$ROOT/data
TRAIN_S=${TRAIN_S:-600}
MODEL=${HTR_MODEL:-small}
PY=${HTR_PY:-python}
THREADS=${HTR_THREADS:-2}
read -r -a OVERRIDES <<< "${HTR_OVERRIDES:-model=$MODEL}"
RES=${RES:-$ROOT/results/htr-$(date +%Y%m%d-%H%M%S)}
HR=$RES/htr
mkdir -p "$HR"
JSONL=$RES/results.jsonl
TOOLPY=$ROOT/venv_data/bin/python
[ -x "$TOOLPY" ] || TOOLPY=$PY
BENCH="$TOOLPY $PEERS_DIR/bench.py"
CER="$TOOLPY $PEERS_DIR/cer.py"
emit() { tee -a "$JSONL"; }
[ -e "$DATA/manifest.json" ] || { echo "peers_htr.sh: $DATA/manifest.json is missing; run run_peers.sh first" >&2; exit 1; }
NTEST=$(wc -l < "$DATA/lists/test.tsv")
ONE=$(head -1 "$DATA/lists/kraken_test.txt")
cd "$REPO" || exit 1

# 1) training: a cold start (empty preprocessing cache) killed at TRAIN_S like the peers; htr's own time budget
#    ends the loop a little earlier so the last validation and checkpoint land inside it.
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
rm -rf "$HR/model" "$HR/cache"
$BENCH --name htr_train --pty --timeout "$TRAIN_S" --log "$HR/train.log" --timeline "$HR/train_timeline.tsv" \
  --regex '(?P<n>\d+)/(?P<tot>\d+) \[' --epoch-regex 'epoch (?P<ep>\d+):' --batch 16 --warmup-s 20 \
  --extra "{\"peer\":\"htr\",\"cmd\":\"python -m htr.train ${OVERRIDES[*]} data=folder train.max_time_s=$((TRAIN_S - 45)) train.threads=$THREADS\"}" \
  -- $PY -m htr.train "${OVERRIDES[@]}" data=folder "data.root=$DATA" "train.max_time_s=$((TRAIN_S - 45))" \
     train.max_epochs=1000 train.early_stopping_patience=1000 "train.threads=$THREADS" \
     "train.out_dir=$HR/model" "hydra.run.dir=$HR/model" "data.cache_dir=$HR/cache" | emit
fi
[ -e "$HR/model/best.pt" ] || { echo '{"name":"htr_error","error":"no best.pt within budget"}' | emit; exit 1; }
$PY -c "
import json, torch
from htr.inference import load_model
m = load_model('$HR/model/best.pt')
print(json.dumps(dict(name='htr_params', peer='htr', n_params=sum(p.numel() for p in m.model.parameters()))))" | emit
$PY -m htr.export "$HR/model/best.pt" "$HR/model/best.onnx" > "$HR/export.log" 2>&1

# 2) recognition of the test lines: batch 1 and 16, PyTorch and onnxruntime; 200 lines and 1 line (the
#    difference removes start-up and model loading), greedy decoding as for the peers.
for BACKEND in torch onnxruntime; do
  CKPT=$HR/model/best.pt; [ $BACKEND = onnxruntime ] && CKPT=$HR/model/best.onnx
  for B in 16 1; do
    for N in $NTEST 1; do
      out=$HR/pred_${BACKEND}_b${B}_n$N
      if [ "$N" = 1 ]; then set -- "$ONE"; else mapfile -t files < "$DATA/lists/kraken_test.txt"; set -- "${files[@]}"; fi
      $BENCH --name htr_recognize_${BACKEND}_b${B}_n$N --stdout "$out.jsonl" --log "$out.err" \
        --extra "{\"peer\":\"htr\",\"backend\":\"$BACKEND\",\"batch\":$B,\"n_lines\":$N}" \
        -- $PY -m htr.recognize --checkpoint "$CKPT" --backend $BACKEND --batch-size "$B" --json --quiet "$@" | emit
      # "split/NNNNNN text" table for cer.py
      $PY -c "
import json, sys
for line in open(sys.argv[1], encoding='utf-8'):
    r = json.loads(line)
    parts = r['image'].rstrip('/').split('/')
    print(parts[-2] + '/' + parts[-1].rsplit('.', 1)[0], r['text'])" "$out.jsonl" > "$out.txt"
    done
    $CER --name htr_cer_${BACKEND}_b$B --gt "$DATA/lists/test.tsv" --pred-table "$HR/pred_${BACKEND}_b${B}_n$NTEST.txt" \
      --extra "{\"peer\":\"htr\",\"backend\":\"$BACKEND\",\"train_budget_s\":$TRAIN_S}" | emit
  done
done

# 3) a cold `recognize` of one line with the shipped default model (what a new user runs first)
$BENCH --name htr_cold_recognize_default --stdout "$HR/cold_default.txt" --log "$HR/cold_default.err" \
  --extra '{"peer":"htr","n_lines":1,"checkpoint":"default"}' -- $PY -m htr.recognize --quiet "$ONE" | emit
echo "results: $JSONL" >&2
