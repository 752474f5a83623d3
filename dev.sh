#!/usr/bin/env bash
# Set up everything Yaguar needs on a fresh Debian/Ubuntu machine, then run the demo or the tests.
#
#   ./dev.sh demo [FOLDER]   station + simulated cameras replaying real images; dashboard on localhost
#   ./dev.sh test            the whole test suite (what CI runs)
#   ./dev.sh setup           only install (Debian packages, virtual environment, Python packages)
#   ./dev.sh typecheck       mypy over the yaguar package (part of test)
#   ./dev.sh docker-base     only the Docker test's cache: base image, wheelhouse, image (setup and test run it)
#
# Installs what is missing: Debian packages with apt when run as root (otherwise it prints the exact
# command to run), the virtual environment in .venv, and the Python packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

DEB_PACKAGES=(mosquitto pocl-opencl-icd ocl-icd-libopencl1 chromium chromium-driver postgresql python3-venv
  gammu libgammu-dev pkg-config)  # the GSM modem tool, and what python-gammu builds against without a wheel
# scale-out tests: a pipeline worker whose clock is off (libfaketime)
DEB_PACKAGES+=(libfaketime)
# the station's Docker image and its test: our own daemon, and a Debian base image made with debootstrap
DEB_PACKAGES+=(docker.io docker-compose debootstrap)
VENV=.venv
YOLOV5_PACKAGES=(yolov5==7.0.14 ultralytics==8.4.190)  # see the megadetector extra in pyproject.toml
PYTHON=${PYTHON:-python3}

missing_debs() {
  local pkg missing=()
  for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

install_debs() {
  local missing
  missing=$(missing_debs)
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "Yaguar needs these Debian packages: $missing"
    echo "Install them with:  sudo apt-get update && sudo apt-get install -y $missing"
    exit 1
  fi
  echo "Installing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

install_venv() {
  local stamp="$VENV/.yaguar-installed"
  local want
  want=$(cat pyproject.toml setup.py | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "Setting up the Python environment in $VENV (a few minutes the first time)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  # `yaguar models import` (the megadetector extra): yolov5's export code, without its requirements
  "$VENV/bin/python" -m pip install -q --no-deps "${YOLOV5_PACKAGES[@]}"
  echo "$want" > "$stamp"
}

setup() {
  install_debs
  install_venv
}

# mypy reads the package through a tree of links, build/typecheck/yaguar: setup.py maps each folder to a
# subpackage of yaguar, which mypy cannot follow through the editable install.
typecheck() {
  local tree=build/typecheck path part
  rm -rf "$tree"
  mkdir -p "$tree/yaguar"
  for path in core/*; do
    [ "$(basename "$path")" = __pycache__ ] || ln -s "$PWD/$path" "$tree/yaguar/"
  done
  for part in agent protocol server engine kernels alerts; do
    ln -s "$PWD/$part" "$tree/yaguar/$part"
  done
  MYPYPATH="$tree" "$VENV/bin/mypy" --config-file pyproject.toml -p yaguar
}

# The Docker test's base image, wheelhouse and image (docker/dev-cache.sh). If Docker cannot run here, say
# so and go on: the other tests still run, and the Docker test fails with the same reason.
docker_cache() {
  docker/dev-cache.sh prepare || echo "The Docker test's cache is not ready (above: why); the Docker test will fail."
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup)
    setup
    docker_cache
    echo "Yaguar is set up. Next: ./dev.sh demo   or   ./dev.sh test"
    ;;
  demo)
    setup
    if [ $# -gt 0 ]; then
      exec "$VENV/bin/yaguar-station" demo --folder "$1" "${@:2}"
    fi
    exec "$VENV/bin/yaguar-station" demo
    ;;
  typecheck)
    setup
    typecheck
    ;;
  docker-base)
    setup
    docker/dev-cache.sh prepare
    ;;
  test)
    setup
    docker_cache  # cached: a few seconds when nothing changed
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    typecheck
    # pytest exits 5 when it collected nothing; that must fail CI, and so it does here.
    # The slowest tests are listed at the end, so a suite that creeps towards its time budget shows where.
    # Two workers: most tests wait on processes, brokers and sockets more than they compute, so two run
    # well side by side even on a 2-core machine; tests/conftest.py keeps the process-heavy ones in one
    # line. YAGUAR_TEST_WORKERS=0 runs everything in one process.
    exec "$VENV/bin/pytest" -q --durations=25 -n "${YAGUAR_TEST_WORKERS:-2}" --dist loadgroup "$@"
    ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
