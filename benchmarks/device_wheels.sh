#!/usr/bin/env bash
# Fetch, on this machine, the wheels that the GPU machine's image lacks for benchmarks/device_check.sh
# (Python 3.12, x86-64; its image has torch, numpy, scipy, pandas, h5py, pyyaml, pytest and setuptools):
# anndata and what it imports (zarr, numcodecs, ...; pandas 2.3, as anndata needs pandas < 3) to read
# the embedded pbmc68k file, and scanpy,
# installed without its dependencies only because the file ships inside it. They land in .whl/ (git
# ignored), which the device tool carries: run(command="bash benchmarks/device_check.sh", carry=[".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl \
  anndata==0.12.19 array-api-compat==1.16.0 legacy-api-wrap==1.5 natsort==8.4.0 scverse-misc==0.0.3 \
  zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 session-info2==0.4.1 \
  pandas==2.3.3 pytz==2026.6 tzdata==2026.6 scanpy==1.11.5
du -sh .whl
