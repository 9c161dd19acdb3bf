#!/usr/bin/env bash
# A GPU check that finishes in under 8 minutes on one CUDA GPU and prints one JSON line per check on stdout:
#
#   bash scripts/gpu_check.sh                 # on the GPU machine, from the repository root
#   DRY_RUN=1 bash scripts/gpu_check.sh       # no GPU: the same checks on the CPU with tiny budgets (tests the script)
#
#   env          torch, CUDA and cuDNN versions, the GPU, bfloat16 and NCCL support
#   pytest_cuda  python -m pytest -m cuda tests/test_cuda.py: AMP bf16 and fp16 training steps, cuDNN's CTC loss
#                against the CPU's, a DDP step over NCCL (world size 1, a free port); passed/failed/skipped names
#   train        model=puigcerver on Copiste for TRAIN_S (180) seconds with AMP: training lines/s (validation
#                pauses left out), peak GPU memory (torch.cuda.max_memory_allocated), the val CER it reached
#   recognize    greedy recognition lines/s at batch 64 on the GPU (preprocessing excluded), shipped model and
#                the model just trained, with their CER on the test split (val when the data has none)
#
# Without CUDA each GPU check prints {"check": ..., "skipped": "no CUDA"} and the script exits 0; a check that
# fails prints {"check": ..., "error": ...} (or {"check": ..., "timed_out_s": ...}) and the script exits 1.
# Data (see scripts/gpu_check.py): ../shared/data/copiste/lines.tsv when the machine has it; the GPU machine's copy
# of the working tree holds 64 MiB at most (Copiste's scans are 88 MB), so pack the lines here first, as for
# gpu_train.sh, at a height that fits (the model's 128 rows are then upsampled from them: the speed and memory
# figures are the model's, the CER is lower-resolution lines'):
#   python scripts/pack_preprocessed.py gpu_data ../shared/data/copiste/lines.tsv --height 64 --splits train val test
# gpu_check.py then reads gpu_data/copiste/lines.tsv with the preprocessing switched off (DATA= and PACKED=1
# name another packed set).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "${DRY_RUN:-}" = 1 ]; then TRAIN_S=${TRAIN_S:-15}; else TRAIN_S=${TRAIN_S:-180}; fi
export TRAIN_S

if ! $PY -c "import hydra, omegaconf, editdistance" 2>/dev/null; then  # as gpu_train.sh: wheels shipped in .whl/
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

status=0
run() {  # check, time limit (s)
  local out rc
  out=$(timeout -s INT "$2" $PY scripts/gpu_check.py "$1" 2> >(tail -n 20 >&2))
  rc=$?
  [ -n "$out" ] && echo "$out"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ]; then
    echo "{\"check\": \"$1\", \"timed_out_s\": $2}"
    status=1
  elif [ "$rc" -ne 0 ] || grep -q '"error"' <<<"$out"; then
    status=1
  elif grep -q '"failed": \[\"' <<<"$out"; then
    status=1
  fi
}
# Time limits: 8 minutes in all at the default budget (a normal run takes about 5).
run env 30
run pytest 120
run train $((TRAIN_S + 90))
run recognize 60
exit $status
