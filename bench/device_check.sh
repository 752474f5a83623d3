#!/usr/bin/env bash
# The OpenCL backend on a machine with a GPU: the OpenCL parity tests and the engine benchmark, in
# well under 10 minutes, all figures in ONE results file ($OUT/device_results.md, else
# test-artifacts/device/device_results.md).
#
#   bench/device_prepare.sh     here, with internet: fills .device/ (wheels, models, images)
#   bash bench/device_check.sh  there, in the copied checkout, with .device carried along
#
# Made for a bare CUDA machine with no internet (Python 3.12, numpy, onnx, onnxruntime, opencv and
# pytest installed; no pyopencl): the carried wheels go to /tmp/yaguar-site, NVIDIA's OpenCL
# driver is found and registered with the ICD loader that pyopencl's wheel carries, and each step
# runs under its share of the time budget (DEVICE_CHECK_BUDGET_S, 360 s by default) so that a
# hanging step still leaves a results file. Also runs on any OpenCL machine (PoCL here), without
# .device, on the current Python environment.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARRIED=$ROOT/.device
OUT=${OUT:-$ROOT/test-artifacts/device}
BUDGET=${DEVICE_CHECK_BUDGET_S:-360}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
RESULTS=$OUT/device_results.md
LOGS=$(mktemp -d)
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1

left() { echo $((BUDGET - SECONDS)); }
note() { echo "$*" | tee -a "$RESULTS"; }
# Append a log file to the results as a fenced block (the last $2 lines, all by default).
block() {
  echo '```' >>"$RESULTS"
  if [ -n "${2:-}" ]; then tail -n "$2" "$1" >>"$RESULTS"; else cat "$1" >>"$RESULTS"; fi
  echo '```' >>"$RESULTS"
}
# Run "$@" for at most $1 seconds (never past the budget), output in $LOGS/$2; prints its status.
step() {
  local limit=$1 name=$2 rc
  shift 2
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  if [ "$limit" -lt 20 ]; then
    note "- $name: skipped, the time budget is spent"
    return 1
  fi
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" >"$LOGS/$name" 2>&1
  rc=$?
  note "- $name: exit $rc after $((SECONDS - t0)) s (limit $limit s)$([ $rc -eq 124 ] && echo ', TIMED OUT')"
  return $rc
}

{
  echo "# Yaguar device check"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- host: $(uname -srm), $(nproc) CPUs"
  [ -f "$CARRIED/REVISION" ] && echo "- code: $(cat "$CARRIED/REVISION")"
  echo "- python: $($PY --version 2>&1) at $(command -v "$PY")"
} >"$RESULTS"

# 1. The carried wheels (pyopencl, pydantic, this checkout as the package yaguar) and data.
if compgen -G "$CARRIED/whl/*.whl" >/dev/null; then
  step 120 pip_install "$PY" -m pip install --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/yaguar-site "$CARRIED"/whl/*.whl || block "$LOGS/pip_install" 30
  export PYTHONPATH=/tmp/yaguar-site${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d "$CARRIED/data/models" ] && export YAGUAR_DATA_DIR=$CARRIED/data
"$PY" -c "import yaguar, pyopencl, onnxruntime, numpy; print('yaguar', yaguar.__file__, '| pyopencl', pyopencl.VERSION_TEXT, '| onnxruntime', onnxruntime.__version__, '| numpy', numpy.__version__)" \
  >"$LOGS/imports" 2>&1
note "- packages: $(tail -n 1 "$LOGS/imports")"

# 2. NVIDIA's OpenCL driver: the image may have the library without an ICD file for it (or with
# one naming a library outside the loader's path). Register it for this run only.
has_nvidia() { "$PY" -c "import pyopencl as cl, sys; sys.exit(0 if any('NVIDIA' in p.name for p in cl.get_platforms()) else 1)" 2>/dev/null; }
if ! has_nvidia; then
  lib=$(ls /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/local/nvidia/lib/libnvidia-opencl.so.1 \
    /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 /usr/lib64/libnvidia-opencl.so.1 2>/dev/null | head -n 1)
  [ -z "$lib" ] && lib=$(timeout 60 find / \( -path /proc -o -path /sys -o -path /dev -o -path /tmp \) -prune \
    -o -name 'libnvidia-opencl.so*' -print 2>/dev/null | head -n 1)
  if [ -n "$lib" ]; then
    mkdir -p /tmp/yaguar-icd
    cp /etc/OpenCL/vendors/*.icd /tmp/yaguar-icd/ 2>/dev/null
    echo "$lib" >/tmp/yaguar-icd/nvidia.icd
    export OCL_ICD_VENDORS=/tmp/yaguar-icd
    export LD_LIBRARY_PATH=$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    note "- NVIDIA OpenCL driver registered for this run: $lib"
  else
    note "- no NVIDIA OpenCL driver library (libnvidia-opencl.so*) on this machine; what there is:"
    ls -l /etc/OpenCL/vendors /usr/local/nvidia/lib64 /usr/local/nvidia/lib >"$LOGS/driver" 2>&1
    block "$LOGS/driver" 40
  fi
fi
SELECT=""
has_nvidia && SELECT=NVIDIA

echo -e "\n## Machine and OpenCL devices\n" >>"$RESULTS"
{
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv,noheader
  "$PY" - <<'EOF'
import pyopencl as cl

WANTED = ("cl_khr_fp16", "cl_khr_integer_dot_product", "cl_khr_subgroups", "cl_intel_subgroups")
for p in cl.get_platforms():
    for d in p.get_devices():
        ext = d.extensions.split()
        print(
            f"{p.name.strip()} / {d.name.strip()} | OpenCL {d.version} | driver {d.driver_version}"
            f" | {d.max_compute_units} CUs @ {d.max_clock_frequency} MHz"
            f" | {d.global_mem_size / 2**30:.1f} GiB global, {d.local_mem_size // 1024} KiB local"
            f" | work-group <= {d.max_work_group_size}"
            f" | {', '.join(e for e in WANTED if e in ext) or 'none of ' + ', '.join(WANTED)}"
        )
EOF
} >"$LOGS/devices" 2>&1
block "$LOGS/devices"
echo -e "\n## Steps\n" >>"$RESULTS"
note "- OpenCL device used: ${SELECT:-the first GPU, else the first device}"

# 3. The OpenCL parity tests (kernels on odd shapes, exports' op patterns, the shared models).
step 240 parity_tests "$PY" -m pytest -q -p no:cacheprovider -rfEs --timeout=150 -o filterwarnings=default \
  tests/integration/test_opencl_*.py

# 4. The engine benchmark: as shipped, then with fp16 activations, then with autotuned tiles.
bench=("$PY" bench/engine.py --quick ${SELECT:+--device "$SELECT"})
step 150 bench "${bench[@]}"
step 90 bench_fp16 "${bench[@]}" --fp16
step 150 bench_autotune "${bench[@]}" --autotune

echo -e "\n## Parity tests (summary, failures)\n" >>"$RESULTS"
block "$LOGS/parity_tests" 60
for name in bench bench_fp16 bench_autotune; do
  [ -f "$LOGS/$name" ] || continue
  echo -e "\n## Engine benchmark: $name\n" >>"$RESULTS"
  block "$LOGS/$name"  # whole: the summary table comes before the per-kernel tables
done
echo -e "\nTotal: $SECONDS s of a $BUDGET s budget." >>"$RESULTS"
rm -rf "$LOGS"
echo "results: $RESULTS"
