#!/usr/bin/env bash
# Prepare a GPU check for a bare machine with no internet (see bench/device_check.sh): fills the
# git-ignored folder .device/ of this checkout with what that machine lacks.
#
#   .device/whl/   wheels for Python 3.12 on x86-64: this checkout built as a wheel (from its
#                  working tree, so the check runs exactly this code) and the packages a CUDA
#                  machine's image does not have (pyopencl and pydantic with their needs), at the
#                  versions of this checkout's .venv
#   .device/data/  the models and images the OpenCL tests and the engine benchmark read, and the
#                  int8 detectors that `yaguar models quantize` makes of YOLOX-nano and FastestDet
#
#   bench/device_prepare.sh            then carry ".device" and run: bash bench/device_check.sh
#
# Needs this checkout's .venv (for the versions) and PyPI (pip download). About 35 MiB in all, a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEST=$ROOT/.device
PY=${PYTHON:-$ROOT/.venv/bin/python}
DATA=${YAGUAR_DATA_DIR:-$ROOT/../shared/data}
# Packages the device image lacks (its list: numpy, onnx, onnxruntime, opencv, pytest,
# pytest-timeout, tqdm, rich and typing-extensions are there already).
PACKAGES=(pyopencl pytools platformdirs siphash24 pydantic pydantic-core annotated-types typing-inspection)
MODELS=(yolox_nano.onnx fastestdet.onnx mobilenet_v2_1.0_224_quant.onnx mobilenet_v2_inat_bird_quant.onnx
  coco80.names imagenet_labels_1001.txt inat_bird_labels.txt)
IMAGES=(classic misc jaguar)

[ -d "$DATA/models" ] || { echo "no shared data at $DATA (set YAGUAR_DATA_DIR)"; exit 1; }
git check-ignore -q .device/x || { echo "/.device/ is not git-ignored here: add it to .gitignore"; exit 1; }
rm -rf "$DEST"
mkdir -p "$DEST/whl" "$DEST/data/models" "$DEST/data/images"

pins=()
for p in "${PACKAGES[@]}"; do
  v=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$p")
  pins+=("$p==$v")
done
echo "wheels for Python 3.12: ${pins[*]}"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST/whl" "${pins[@]}"

# The project itself, built from a clean copy of the files that travel (tracked and untracked but
# not ignored), so no stale build/ folder of this checkout leaks into the wheel.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git ls-files -z -co --exclude-standard | tar -c --null -T - -f - | tar -x -C "$src" -f -
"$PY" -m pip wheel -q --no-deps -w "$DEST/whl" "$src"

for f in "${MODELS[@]}"; do cp "$DATA/models/$f" "$DEST/data/models/"; done
for d in "${IMAGES[@]}"; do cp -r "$DATA/images/$d" "$DEST/data/images/"; done
chmod -R u+w "$DEST"
# The int8 detectors of `yaguar models quantize`, so that the benchmark there runs them too (a
# refusal is printed and the check goes on without that model).
for m in yolox_nano fastestdet; do
  "$PY" -m yaguar.engine.cli models --model-dir "$DATA/models" quantize "$m" --out "$DEST/data/models" \
    --calibration "$DATA/images/camera-trap" "$DATA/images/jaguar" 2>&1 | grep -v WARNING || true
done
echo "$(git rev-parse --short HEAD) on $(git rev-parse --abbrev-ref HEAD), $(git status --short | wc -l) files changed" >"$DEST/REVISION"
du -sh "$DEST/whl" "$DEST/data"
echo "ready: carry [\".device\"] and run: bash bench/device_check.sh"
