#!/usr/bin/env bash
# GPU sweep for a lent device machine: the GPU epoch benchmark, then
# five trainings side by side on one GPU (16 CPU cores: 2 threads each).
#
# Prepare here (the raw archives stay behind; the prepared datasets travel without their edge
# lists, which are rebuilt there: with the ~55 MB tracked tree, whole compressed caches no
# longer fit in the 64 MiB a call carries):
#   python tools/pack_dataset.py pack cache/fe-k-fdmnes-KEY.npz .gpu/fe-noedges.npz
#   python tools/pack_dataset.py pack cache/cu-k-feff-KEY.npz .gpu/cu-noedges.npz
# (the cache files appear after one xanes-train run of each *-cpu.yaml; the Cu presets here
# crop at 6 Å, so pack a 6 Å preparation), add /.gpu/ to .git/info/exclude,
# then run `bash tools/gpu_sweep.sh 6.5 15` on the device with carry [".gpu"]; results come back as
# one .tgz per run under $OUT. (tools/gpu_train.sh runs a plan of your own instead.)
# Usage: bash tools/gpu_sweep.sh TIME_LIMIT_MIN BENCH_BATCHES   (D=folder of fe.npz and cu.npz, default .gpu)
set -u
D=${D:-.gpu}
TL=${1:-6.5}; NB=${2:-15}
PY=${PY:-python3}
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs
for k in fe cu; do  # packed datasets: rebuild the edges first (tools/pack_dataset.py)
  [ -f "$D/$k-noedges.npz" ] && [ ! -f "$D/$k.npz" ] && $PY tools/pack_dataset.py unpack "$D/$k-noedges.npz" "$D/$k.npz"
done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -2
$PY -c "import torch, e3nn, torch_geometric; print('torch', torch.__version__, 'e3nn', e3nn.__version__, 'pyg', torch_geometric.__version__, 'cuda', torch.cuda.is_available())"
timeout 150 $PY benchmarks/train_epoch.py --presets cpu paper gpu --data $D/cu.npz --batches "$NB" --threads 2 2>&1 | grep -v -i warn | tee "$OUT/train_epoch.txt"
run() {  # name config data extra-args...
  local name=$1 cfg=$2 data=$3; shift 3
  $PY -m trainer.cli.train "$cfg" --data "$data" --set name="$name" --set optim.time_limit_min="$TL" \
      --set optim.num_threads=2 "$@" > "runs/$name.log" 2>&1
}
run fe-paper configs/fe-k-fdmnes-paper.yaml $D/fe.npz &
run fe-gpu configs/fe-k-fdmnes-gpu.yaml $D/fe.npz &
run cu-paper configs/cu-k-feff-paper.yaml $D/cu.npz &
run cu-gpu configs/cu-k-feff-gpu.yaml $D/cu.npz &
run cu-gpu-unscreened configs/cu-k-feff-gpu.yaml $D/cu.npz --set "data.extra_train_ids=[unscreened.txt]" &
wait
for name in fe-paper fe-gpu cu-paper cu-gpu cu-gpu-unscreened; do
  echo "== $name"; grep -v -i "warn\|^ *$" "runs/$name.log" | grep -E "model:|split|epoch|done|Error|error" | tail -6
  tar -czf "$OUT/$name.tgz" -C runs "$name.log" "$name/best.pt" "$name/metrics.jsonl" "$name/config.yaml" \
      "$name/val_ids.txt" "$name/train_ids.txt" 2>/dev/null
done
ls -la "$OUT"
