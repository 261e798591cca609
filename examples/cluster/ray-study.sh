#!/bin/bash
# A study on a Ray cluster: every run of the study file becomes one Ray actor that asks the cluster
# for its CPUs and GPU share, and trains wherever they are free. Run it on the head node (where the
# runs folder's store lives) after ray-cluster.sh; it prints progress until the study is done, then
# its table. The app on the same runs folder and backend watches it live, cancels and resumes it.
#   examples/cluster/ray-study.sh [STUDY.toml]      (default: the 4 x 4 matrix beside this script)
set -euo pipefail
cd "$(dirname "$0")/../.."
export BD_JOBS_BACKEND=ray
export RAY_ADDRESS=${RAY_ADDRESS:-auto}               # auto: the cluster this node belongs to (or HOST:6379)
export BD_RUNS_DIR=${BD_RUNS_DIR:-/shared/runs}        # the same path on every node
export BD_DATA_DIR=${BD_DATA_DIR:-/shared/datasets}    # the same path on every node
export BD_RAY_GPUS_PER_RUN=${BD_RAY_GPUS_PER_RUN:-0.25} # quick runs of MNIST size: 4 share one GPU
export BD_RAY_CPUS_PER_RUN=${BD_RAY_CPUS_PER_RUN:-2}

study_file=${1:-examples/cluster/matrix.toml}
name=$(.venv/bin/python -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["name"])' "$study_file")
.venv/bin/python -m bdcore study launch "$study_file"
status=0
.venv/bin/python -m bdcore study wait "$name" --every "${CHECK_EVERY_S:-30}" || status=$?
.venv/bin/python -m bdcore study show "$name"
exit "$status"
