# Sourced by the scripts that run on a GPU machine (docs/clusters.md): installs gymnasium and
# MuJoCo from the wheels in .whl/ (that machine reaches no registry), makes $R (the folder whose
# contents come back as a tarball) and records the software and the GPU in $R/env.txt.
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >/dev/null 2>&1 || { echo "wheel install failed: fill .whl/ with bash benchmarks/gpu_wheels.sh and carry it"; exit 1; }
export PYTHONPATH=$PWD:/tmp/site
R=$OUT/r
mkdir -p "$R/logs"
python3 -c "import torch, gymnasium, mujoco, platform; print(platform.python_version(), torch.__version__, gymnasium.__version__, mujoco.__version__, torch.cuda.get_device_name(), flush=True)" | tee "$R/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$R/env.txt"
