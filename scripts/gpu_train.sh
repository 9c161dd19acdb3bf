#!/usr/bin/env bash
# Train the French default model and its recipe ablations side by side on one GPU, from packed lines.
#
#   python scripts/pack_preprocessed.py gpu_data ../shared/data/{copiste,peraire,poilus}/lines.tsv   # here
#   OUT=/some/dir bash scripts/gpu_train.sh          # on the GPU machine, from the repository root
#
# A copy of the working tree limited to 64 MiB counts the packed files' disk blocks: send them as one zip
# (python -m zipfile -c gpu_pack/data.zip gpu_data; unpacked there with python -m zipfile -e gpu_pack/data.zip .).
#
# The lines travel preprocessed (gpu_data/, see pack_preprocessed.py), so every run switches htr's
# preprocessing steps off and reads them as they are; ship.pt gets the full pipeline's settings back.
# Five runs share the machine for the same wall time (BUDGET_S of training each):
#   ship   experiment=french_medium, 6 data-loading workers (the model that ships)
#   recipe experiment=french_medium, 2 workers            (the reference of the ablations below)
#   flat   recipe with model.column_pool=flatten          (no column max-pooling)
#   noshort recipe with model.ctc_shortcut=0              (no CTC shortcut head)
#   v1     experiment=copiste_v1 (the previous recipe: model=cpu, height 48, Adam + plateau, no augmentation,
#          no EMA) on the same data, 2 workers
# RUN_SET=ship runs `ship` alone instead, with every loader worker and GPU-sized batches (SHIP_EXTRA, default
# batch 64 at lr 2e-3): what the first GPU session's figures (docs/results.md) suggest for the next one.
# RUN_SET=continue goes on from trained models, three runs side by side, batch 64, each with a cosine decay
# that ends with the time budget (optim.scheduler=cosine_time), so every run finishes its schedule:
#   ft48   experiment=french_finetune from the shipped model (model=cpu, height 48), light augmentation
#   ft48h  the same with heavy augmentation (augmentation judged from a converged model, the one change)
#   med64  experiment=french_medium from INIT_MEDIUM (default gpu_init/medium.pt: the CPU-continued
#          french_medium run's best weights, fp16), heavy augmentation
# Writes to $OUT: NAME.pt for each run (its best weights, charset, config; no optimizer state), logs.tgz (each
# run's console log and TensorBoard events), summary.jsonl (the GPU, best val CER per run and source, epochs).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:?set OUT to the output folder}
BUDGET_S=${BUDGET_S:-420}
KILL_S=${KILL_S:-$((BUDGET_S + 80))}
RUNS=${RUNS:-/tmp/htr-gpu-runs}
SHIP_WORKERS=${SHIP_WORKERS:-6}
CONT_WORKERS=${CONT_WORKERS:-4}
EXTRA=${EXTRA:-}  # more overrides for every run (the local dry run shrinks the data with it)
RUN_SET=${RUN_SET:-study}
export RUN_SET
SHIP_EXTRA=${SHIP_EXTRA:-data.batch_size=64 optim.lr=0.002 optim.warmup_steps=200}
mkdir -p "$RUNS" "$OUT"
export PYTHONUNBUFFERED=1

if ! $PY -c "import hydra, omegaconf, editdistance" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
$PY - <<'EOF' | tee "$OUT/summary.jsonl"
import json, os, torch
print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(), "cpus": os.cpu_count(),
                  "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))
EOF

PACKED="data.sources.0.root=gpu_data/copiste/lines.tsv data.sources.1.root=gpu_data/peraire/lines.tsv \
data.sources.2.root=gpu_data/poilus/lines.tsv data.preprocess.contrast=false data.preprocess.deskew=false \
data.preprocess.deslant=false data.preprocess.crop=false train.progress=false train.threads=2"
RECIPE="experiment=french_medium $PACKED train.max_time_s=$BUDGET_S $EXTRA"

# Fill the preprocessing caches once (heights 64 and 48) before the runs start side by side.
($PY -m htr.train $RECIPE train.max_steps=1 train.max_epochs=1 hydra.run.dir="$RUNS/warm64" > "$RUNS/warm64.log" 2>&1 \
  || echo failed > "$RUNS/warm64.failed") &
$PY -m htr.train experiment=copiste_v1 data=french $PACKED $EXTRA train.max_steps=1 train.max_epochs=1 \
  hydra.run.dir="$RUNS/warm48" > "$RUNS/warm48.log" 2>&1 &
wait
tail -n 3 "$RUNS"/warm64.log "$RUNS"/warm48.log
if [ -e "$RUNS/warm64.failed" ]; then  # a first GPU step that fails with mixed precision: try without it
  echo "mixed-precision step failed; retrying with train.amp=false"
  $PY -m htr.train $RECIPE train.max_steps=1 train.max_epochs=1 train.amp=false hydra.run.dir="$RUNS/warm64b" \
    > "$RUNS/warm64b.log" 2>&1 || { tail -n 30 "$RUNS/warm64b.log"; exit 1; }
  PACKED="$PACKED train.amp=false"
  RECIPE="$RECIPE train.amp=false"
fi

start=$(date +%s)
launch() {  # name, overrides...
  local name=$1; shift
  timeout -s INT "$KILL_S" $PY -m htr.train "$@" hydra.run.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1 &
}
if [ "$RUN_SET" = ship ]; then
  launch ship $RECIPE data.num_workers="$SHIP_WORKERS" $SHIP_EXTRA
elif [ "$RUN_SET" = continue ]; then
  TIMED="data.batch_size=64 optim.scheduler=cosine_time optim.warmup_steps=100 train.max_time_s=$BUDGET_S \
train.max_steps=null train.max_epochs=100000 train.early_stopping_patience=100000 data.num_workers=$CONT_WORKERS \
train.num_val_images=2"
  FT="experiment=french_finetune data=french $PACKED $TIMED optim.lr=0.0014 $EXTRA"
  launch ft48 $FT train.init_from=default
  launch ft48h $FT train.init_from=default augment=heavy
  launch med64 $RECIPE $TIMED optim.lr=0.001 train.init_from="${INIT_MEDIUM:-gpu_init/medium.pt}"
else
  launch ship $RECIPE data.num_workers="$SHIP_WORKERS"
  launch recipe $RECIPE data.num_workers=2
  launch flat $RECIPE data.num_workers=2 model.column_pool=flatten
  launch noshort $RECIPE data.num_workers=2 model.ctc_shortcut=0
  launch v1 experiment=copiste_v1 data=french $PACKED train.max_time_s="$BUDGET_S" data.num_workers=2 $EXTRA
fi
wait
echo "runs took $(( $(date +%s) - start )) s"

$PY - "$RUNS" "$OUT" <<'EOF' | tee -a "$OUT/summary.jsonl"
import json, os, re, sys
from pathlib import Path
import torch
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
names = sorted(p.stem for p in runs.glob("*.log") if not p.stem.startswith("warm"))
for name in names:
    log = (runs / f"{name}.log").read_text(errors="replace")
    epochs = re.findall(r"^epoch (\d+)(?: \((?:stopped part-way|mid-epoch)\))? step (\d+): val loss \S+ CER (\S+) .*?\((\d+) s\)(.*)$", log, re.M)
    best = min(epochs, key=lambda e: float(e[2])) if epochs else None
    row = {"run": name, "epochs": len(epochs), "last_s": int(epochs[-1][3]) if epochs else None,
           "steps": int(epochs[-1][1]) if epochs else None,
           "best_cer": float(best[2]) if best else None, "best_epoch": int(best[0]) if best else None,
           "best_sources": best[4].strip("; ") if best else None, "tail": log.strip().splitlines()[-1:] }
    print(json.dumps(row))
for name in names:  # the weights that may ship: each run's best.pt, without its optimizer state
    if name != "ship" and os.environ.get("RUN_SET") != "continue":
        continue  # the study's ablations: their logs only
    if not (runs / name / "best.pt").is_file():
        continue
    ckpt = torch.load(runs / name / "best.pt", map_location="cpu", weights_only=True)
    keep = {k: ckpt[k] for k in ("format", "htr_version", "model", "charset", "config", "preprocess", "state")}
    keep["preprocess"] = {**keep["preprocess"], "contrast": True, "deskew": True, "deslant": True, "crop": True}
    keep["config"]["data"]["preprocess"] = dict(keep["preprocess"])
    for src in keep["config"]["data"]["sources"]:  # where the lines came from before they were packed
        src["root"] = src["root"].replace("gpu_data/", "../shared/data/")
    torch.save(keep, out / f"{name}.pt")
    print(json.dumps({f"{name}.pt": "written", "epoch": ckpt["state"]["epoch"], "best_cer": ckpt["state"]["best_cer"]}))
EOF
tar czf "$OUT/logs.tgz" -C "$RUNS" --exclude='*.pt' $(for r in recipe flat noshort v1 warm64 warm48; do echo --exclude=$r/tensorboard; done) .
ls -la "$OUT"
