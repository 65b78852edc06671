#!/usr/bin/env bash
# The one prepared command for a lent GPU machine (issue 17; docs/performance.md "On a GPU"): the CUDA
# tests, a 50,000-cell paper-profile imputation and the speed benchmark on the GPU, each stage under its
# own time limit so that the call ends inside the device tool's 10-minute limit; every log and JSON
# lands in $OUT (the folder the device tool brings back; benchmarks/results/device by default).
#
#   here, once:   bash benchmarks/device_wheels.sh      # what the GPU image lacks, into .whl/
#   device tool:  run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=600)
#   then:         copy the JSON files into benchmarks/results/ and record their figures
#
# SMOKE=1 runs the same stages on the CPU at toy sizes without the wheels (PY=.venv/bin/python; the
# test suite does, tests/test_device_check.py), so the harness itself is tested where no GPU is.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/device}
PY=${PY:-python3}
SMOKE=${SMOKE:-0}
SITE=${SITE:-/tmp/countsbench-site}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
failed=()

BUDGET=${BUDGET:-560} # seconds for the whole script: the device tool kills a command at 600
not_run=()

stage() { # stage NAME SECONDS COMMAND...: run under a time limit (cut to what is left of BUDGET), log to
  # $OUT/NAME.log, show its tail
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  if [ $((BUDGET - SECONDS)) -lt "$limit" ]; then limit=$((BUDGET - SECONDS)); fi
  if [ "$limit" -lt 30 ]; then
    echo "== $name: NOT RUN (${limit} s left of the ${BUDGET} s budget)"
    not_run+=("$name")
    return
  fi
  echo "== $name (limit ${limit} s)"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s"
  tail -n 12 "$OUT/$name.log"
  [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

if [ "$SMOKE" = 1 ]; then
  speed_args=(--smoke --memory in-process --no-profile)
  impute_args=(--cells 24 --fit-steps 2 --set n_steps=2 --set batch_size=16 --set dim=16 --set n_layers=1)
  compile_args=()
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" ||
    exit 1
  export COUNTSBENCH_REQUIRE_CUDA=1 # the CUDA tests fail, not skip, without a GPU
  speed_args=(--no-compile --memory in-process)
  impute_args=(--cells 50000)
  compile_args=(--only train_b64_attention_dropout0 impute_b512 --memory off --no-profile)
fi

# countsbench itself, without its dependencies or an index, next to the carried wheels
rm -rf "$SITE"
if [ "$SMOKE" != 1 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl || exit 1
fi
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE" . || exit 1
export PYTHONPATH="$SITE"
rm -rf build # setuptools' build folder in the checkout

# the checkout's countsbench/ folder (methods/ is not inside it) must not shadow the install: pytest runs
# with -P (no current directory on sys.path) and importlib imports; a script's sys.path[0] is benchmarks/
"$PY" -P -c "import countsbench.methods, sys; sys.exit(not countsbench.__file__.startswith('$SITE'))" || {
  echo "device check: countsbench is not imported from $SITE"
  exit 1
}
stage cuda_tests 120 "$PY" -P -m pytest -q -p no:cacheprovider --noconftest --import-mode=importlib -rs \
  tests/countsdiff/test_cuda.py
stage imputation_50k 150 "$PY" benchmarks/imputation_throughput.py "${impute_args[@]}" \
  --out "$OUT/imputation_throughput_cuda.json"
stage speed 210 "$PY" benchmarks/countsdiff_speed.py "${speed_args[@]}" --out "$OUT/countsdiff_speed_cuda.json"
if [ ${#compile_args[@]} -gt 0 ]; then
  stage speed_compiled 120 "$PY" benchmarks/countsdiff_speed.py "${compile_args[@]}" \
    --out "$OUT/countsdiff_speed_cuda_compiled.json"
fi

[ ${#not_run[@]} -eq 0 ] || echo "device check: NOT RUN (out of time): ${not_run[*]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "device check: FAILED stages: ${failed[*]}"
  exit 1
fi
echo "device check: every stage passed; results in $OUT"
