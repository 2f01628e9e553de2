#!/usr/bin/env bash
# Fills .whl/ (gitignored) with the wheels benchmarks/gpu_setup.sh installs on a GPU machine that
# reaches no package registry: gymnasium and MuJoCo at constraints.txt's versions and their
# dependencies that such a machine's torch image lacks. Run here, where PyPI is reachable, then
# carry .whl to that machine. PY (default 3.12) is that machine's Python version.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-3.12}
python3 -m pip download -q -d .whl --no-deps --only-binary=:all: --python-version "$PY" \
    --platform manylinux_2_28_x86_64 -c constraints.txt \
    gymnasium mujoco mujoco-core mujoco-studio farama-notifications glfw imageio pyopengl websockets
ls .whl
