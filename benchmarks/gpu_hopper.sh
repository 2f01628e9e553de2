#!/usr/bin/env bash
# One call on a GPU machine: Hopper-v5 at the paper's settings on CUDA for LIMIT seconds
# (default 540), as many seeds side by side on the one GPU as SEEDS names (default 0 1 2), MBPO
# and SAC (one update per step), with the validation config's options (10 evaluation episodes
# every 250 env steps). A run that reaches its budget ends complete; the rest are stopped by
# SIGTERM and leave their partial run files. Results: $OUT/hopper_cuda.tar.gz (run files and
# logs, no checkpoints: they are too large to come back and need the GPU to continue).
set -u
source benchmarks/gpu_setup.sh
LIMIT=${LIMIT:-540}
SEEDS=${SEEDS:-0 1 2}
DEVICE=${DEVICE:-cuda}
TOTAL=${TOTAL:-50000}
for s in $SEEDS; do
    for algo in mbpo sac; do
        variant=hpaper; extra=()
        [ "$algo" = sac ] && { variant=utd1; extra=(--updates-per-step 1); }
        timeout -s TERM "$LIMIT" python3 -m mbpo train --algo "$algo" --preset paper --env Hopper-v5 --seed "$s" \
            --device "$DEVICE" --threads 1 --total-steps "$TOTAL" --eval-episodes 10 --log-every 250 \
            --checkpoint-interval 0 --quiet "${extra[@]}" \
            --out "$R/runs/Hopper-v5/$algo/$variant/$DEVICE/seed$s" > "$R/logs/hopper_${algo}_$s.log" 2>&1 &
    done
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 60 > "$R/logs/nvidia-smi.log" 2>&1 &
SMI=$!
wait $(jobs -p | grep -v "^$SMI$")
kill "$SMI" 2>/dev/null
shopt -s nullglob
for d in "$R"/runs/Hopper-v5/*/*/*/seed*; do
    f=$d/eval.csv; [ -f "$f" ] || f=$d/eval.csv.part
    echo "$d: $(tail -1 "$f" | cut -d, -f1,3)"
done
find "$R" -name checkpoint.pt -delete
tar -czf "$OUT/hopper_cuda.tar.gz" -C "$R" .
ls -la "$OUT"
