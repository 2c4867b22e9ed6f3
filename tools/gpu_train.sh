#!/usr/bin/env bash
# Train the runs of a plan side by side on one lent GPU, all under one time limit, 2 CPU
# threads each (16 cores: up to 7 runs and the loaders), the learning rate annealed over
# the time limit (`optim.schedule=cosine_time`, since epoch times there are not known
# beforehand). Results come back as one .tgz per run under $OUT, plus summary.txt.
#
# PLAN: one run per line, `NAME CONFIG [xanes-train arguments...]`; blank and '#' lines skipped.
# DATA: a prepared dataset (.npz: a cache file of an earlier xanes-train run here), which
#       must match every config's grid, graph and normalization. To fit the 64 MiB a call
#       carries, travel it without edges and rebuild them there first:
#         here:  python tools/pack_dataset.py pack CACHE.npz .gpu/cu-noedges.npz  (/.gpu/ in .git/info/exclude)
#         there: python3 tools/pack_dataset.py unpack .gpu/cu-noedges.npz /tmp/cu.npz && bash tools/gpu_train.sh ...
#       One 7 A preparation serves 6 A members too: `--set graph.r_crop=7.0 --set model.r_crop=6.0`.
#       The tracked tree is ~55 MB (the shipped checkpoints); a packed Cu dataset (~12 MB) just fits.
# KEEP_STATE=1 also brings back each run's train_state.pt (~8 MB each; at most 64 MB come back),
# so that a later session can continue it: xanes-train CONFIG --resume --set optim.time_limit_min=M.
# Each run is killed RUN_SLACK_S (default 90) seconds past the limit, so that what it saved
# still comes back inside the device call's own limit.
# Usage: bash tools/gpu_train.sh PLAN TIME_LIMIT_MIN DATA
set -u
PLAN=$1; TL=$2; DATA=$3
PY=${PY:-python3}
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs
SUMMARY=$OUT/summary.txt
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -2
  $PY -c "import torch, e3nn, torch_geometric; print('torch', torch.__version__, 'e3nn', e3nn.__version__,
'pyg', torch_geometric.__version__, 'cuda', torch.cuda.is_available())"; } > "$SUMMARY" 2>&1
names=()
while read -r name cfg args; do
  case "$name" in ''|'#'*) continue ;; esac
  names+=("$name")
  # shellcheck disable=SC2086  # the plan's arguments are split on purpose
  timeout "$(awk -v t="$TL" -v s="${RUN_SLACK_S:-90}" 'BEGIN { printf "%d", t * 60 + s }')" \
      $PY -m trainer.cli.train "$cfg" --data "$DATA" --set name="$name" --set output_dir=runs \
      --set optim.time_limit_min="$TL" --set optim.num_threads=2 --set optim.schedule=cosine_time \
      --set optim.epochs=100000 $args > "runs/$name.log" 2>&1 &
done < "$PLAN"
wait
for name in "${names[@]}"; do
  { echo "== $name"; grep -v -i "warn" "runs/$name.log" | grep -E "model:|split|epoch|done|rror" | tail -8; } >> "$SUMMARY"
  tar -czf "$OUT/$name.tgz" -C runs "$name.log" "$name/best.pt" "$name/metrics.jsonl" "$name/config.yaml" \
      "$name/val_ids.txt" "$name/train_ids.txt" "$name/report_metrics.json" \
      $([ "${KEEP_STATE:-0}" = 1 ] && echo "$name/train_state.pt") 2>/dev/null
done
cat "$SUMMARY"; ls -la "$OUT"
