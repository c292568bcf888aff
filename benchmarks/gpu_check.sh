#!/usr/bin/env bash
# Proves the GPU path of the runner on a machine with an NVIDIA GPU and its driver:
# installs the GPU build of TensorFlow into .venv, runs the lesson's solution notebook through
# the sandbox with --device gpu, and checks that the kernel inside the sandbox saw the GPU and
# that the run record names it. Prints the wall time beside the CPU figure for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-$(mktemp -d)}"
make --no-print-directory .venv/.installed
.venv/bin/python -m pip install --quiet 'tensorflow[and-cuda]==2.21.0'
.venv/bin/autograder datasets
.venv/bin/autograder run lesson25 source/lesson25/lesson25.ipynb --device gpu --out "$out/gpu-run"
.venv/bin/python - "$out/gpu-run/run.json" <<'PY'
import json, sys
record = json.load(open(sys.argv[1]))
device = record["device"]
print(f"status={record['status']} device={device['kind']}:{device['name']} "
      f"seen_by_kernel={device['gpus_seen_by_kernel']} wall={record['wall_s']} s")
assert record["status"] == "ok", record["message"]
assert device["kind"] == "gpu" and device["gpus_seen_by_kernel"], "the kernel did not see the GPU"
PY
