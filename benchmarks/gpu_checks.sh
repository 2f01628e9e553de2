#!/usr/bin/env bash
# One call on a GPU machine (docs/clusters.md): the CUDA tests, the cost of an MBPO env step
# at the paper's Hopper settings on CUDA, a real Hopper MBPO run on CUDA for its measured rate, and
# the InvertedPendulum validation runs (MBPO on CUDA, SAC on the CPU), all bounded in time.
# Needs gymnasium and MuJoCo as wheels in .whl/ (that machine has no registry); results land in
# $OUT/gpu.tar.gz (run files and logs, no checkpoints).
set -u
source benchmarks/gpu_setup.sh

echo "== paper-scale cost on CUDA (machine otherwise idle)"
python3 benchmarks/paper_scale.py --device cuda --epochs 42.6 --repeat 3 2>&1 | tee "$R/paper_scale_cuda.txt"

LIMIT=${LIMIT:-300}
echo "== background runs for ${LIMIT}s"
H=$R/runs/Hopper-v5/mbpo/hpaper/cuda/seed0
timeout "$LIMIT" python3 -m mbpo train --algo mbpo --preset paper --env Hopper-v5 --seed 0 --device cuda \
    --log-every 250 --checkpoint-interval 0 --out "$H" > "$R/logs/hopper_mbpo_cuda.log" 2>&1 &
for s in 0 1 2 3 4; do
    timeout "$LIMIT" python3 -m mbpo train --algo mbpo --preset paper --env InvertedPendulum-v5 --seed $s \
        --device cuda --log-every 250 --checkpoint-interval 0 --quiet \
        --out "$R/runs/InvertedPendulum-v5/mbpo/hpaper/cuda/seed$s" > "$R/logs/ip_mbpo_$s.log" 2>&1 &
    timeout "$LIMIT" python3 -m mbpo train --algo sac --preset paper --env InvertedPendulum-v5 --seed $s \
        --updates-per-step 1 --log-every 250 --checkpoint-interval 0 --quiet \
        --out "$R/runs/InvertedPendulum-v5/sac/utd1/cpu/seed$s" > "$R/logs/ip_sac_$s.log" 2>&1 &
done
echo "== CUDA tests (beside the runs)"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee "$R/test_cuda.txt"
wait
tail -3 "$R/logs/hopper_mbpo_cuda.log"
for f in "$R"/logs/ip_*.log; do echo "$f: $(tail -1 "$f")"; done
find "$R" -name checkpoint.pt -delete
tar -czf "$OUT/gpu.tar.gz" -C "$R" .
ls -la "$OUT"
