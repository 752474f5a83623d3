#!/usr/bin/env bash
# What the Docker test (tests/e2e/test_docker_station.py) needs, made once and cached, because it needs
# the network and minutes: a Debian base image built with debootstrap (no registry can be reached here)
# and a wheelhouse of the station's Python packages; then the station image, pre-built, so the test only
# rebuilds the layers that changed. `./dev.sh setup` runs `prepare`. Needs root (dockerd, debootstrap).
#
#   docker/dev-cache.sh prepare        the base image, the wheelhouse and the image (each skipped if current)
#   docker/dev-cache.sh start | stop   our own Docker daemon (no bridge, no iptables), as every test runs it
#   docker/dev-cache.sh check          are the base image and the wheelhouse current (the daemon started)
#   docker/dev-cache.sh build          this checkout's image from them, with no network (the test)
#   docker/dev-cache.sh image-tag      that image's tag (one per checkout, so checkouts never share one)
#
# The daemon is ours alone: its own socket, pid file, exec root and data root under $YAGUAR_DOCKER_CACHE
# (default ~/.cache/yaguar/docker, where images persist between runs), never a system daemon's. It runs
# with no bridge network and no iptables rules, and containers run with --network host only, so no
# traffic leaves loopback (issue 18). Several checkouts on one machine share it: each user holds a shared
# lock on $cache/users.lock while it uses the daemon (prepare here, the test in tests/support/docker.py),
# and `stop` stops it only when no one else holds that lock (the last one out stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${YAGUAR_DOCKER_CACHE:-$HOME/.cache/yaguar/docker}
export DOCKER_HOST=unix://$cache/docker.sock DOCKER_BUILDKIT=1  # BuildKit: sends only changed files
# Debian's docker.io client (what CI installs), not another one that may be earlier on PATH
docker=/usr/bin/docker
[ -x "$docker" ] || docker=$(command -v docker)
wheelhouse=docker/wheelhouse
suite=bookworm

say() { printf '== %s\n' "$*"; }

running() { "$docker" info >/dev/null 2>&1; }

start() {  # prints "running" when our daemon was up already, "started" when this call started it
  local state
  mkdir -p "$cache"
  exec 8>>"$cache/start.lock"
  flock -x 8  # one start at a time: two daemons on one data root would clash
  state=$(running && echo running || launch)
  flock -u 8
  echo "$state"
}

launch() {
  command -v dockerd >/dev/null || { echo "dockerd is missing: apt-get install docker.io (./dev.sh setup)" >&2; exit 1; }
  dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
    --data-root "$cache/data" --exec-root "$cache/exec" --pidfile "$cache/dockerd.pid" \
    --host "unix://$cache/docker.sock" >>"$cache/dockerd.log" 2>&1 8>&- 9>&- &  # not our locks
  for _ in $(seq 120); do
    if running; then echo started; return 0; fi
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  echo "the Docker daemon did not start; the end of $cache/dockerd.log:" >&2
  tail -20 "$cache/dockerd.log" >&2
  exit 1
}

stop() {  # only when no other run holds users.lock (see above); a run must release its own first
  local pid
  [ -f "$cache/dockerd.pid" ] || return 0
  exec 9>>"$cache/users.lock"
  flock -n -x 9 || { echo "the Docker daemon is in use by another run: left running"; return 0; }
  pid=$(cat "$cache/dockerd.pid")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  echo "the Docker daemon (pid $pid) did not stop in 30 s"
  exit 1
}

# The Debian packages the Dockerfile wants (its DEBIAN_PACKAGES argument), plus Python: the base has them
# all, so building the image needs no apt.
base_packages() {
  echo python3 python3-venv $(sed -n 's/^ARG DEBIAN_PACKAGES="\(.*\)"$/\1/p' Dockerfile)
}

base_tag() {
  echo "yaguar-debian-base:$( (echo "$suite"; base_packages) | sha256sum | cut -c1-12)"
}

mirror() {  # the Debian mirror this machine's apt uses
  local url
  url=$(grep -hoE '^(URIs:|deb) *https?://[^ ]+/debian/?' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
    2>/dev/null | head -1 | grep -oE 'https?://[^ ]+' || true)
  echo "${url:-http://deb.debian.org/debian}"
}

build_base() {
  local tag root
  tag=$(base_tag)
  if "$docker" image inspect "$tag" >/dev/null 2>&1; then
    say "base image $tag: cached"
    return 0
  fi
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap"; exit 1; }
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  say "base image $tag: debootstrap $suite from $(mirror) (a few minutes, once)"
  debootstrap --variant=minbase --include="$(base_packages | tr ' ' ',')" "$suite" "$root" "$(mirror)" \
    >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log"; rm -rf --one-file-system "$root"; exit 1; }
  rm -rf --one-file-system "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "$docker" import - "$tag" >/dev/null
  rm -rf --one-file-system "$root"
  say "base image $tag: made ($("$docker" image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec))"
}

wheelhouse_key() { sha256sum <pyproject.toml | cut -c1-16; }

build_wheelhouse() {
  local key
  key=$(wheelhouse_key)
  if [ "$(cat "$wheelhouse/.key" 2>/dev/null)" = "$key" ]; then
    say "wheelhouse: cached"
    return 0
  fi
  say "wheelhouse: the station's Python packages as wheels in $wheelhouse"
  find "$wheelhouse" -name '*.whl' -delete
  mkdir -p "$cache"
  .venv/bin/python -m pip wheel -q --wheel-dir "$wheelhouse" '.[station,opencl,postgres,train]' 'setuptools>=69' wheel \
    >"$cache/wheelhouse.log" 2>&1 || { tail -20 "$cache/wheelhouse.log"; exit 1; }
  rm -f "$wheelhouse"/yaguar-*.whl  # the image installs the code from the checkout
  echo "$key" >"$wheelhouse/.key"
}

image_tag() { echo "yaguar-station:dev-$(pwd -P | sha256sum | cut -c1-8)"; }

build_image() {  # --network none: everything it needs is in the base and the wheelhouse
  say "image $(image_tag) (only what changed is rebuilt)"
  "$docker" build -q --network none --build-arg BASE_IMAGE="$(base_tag)" -t "$(image_tag)" . >/dev/null
  "$docker" image prune -f >/dev/null  # the image this build replaced, so the data root does not grow
}

check() {  # what the test needs from `prepare`, with the reason when it is not there
  local problems=()
  "$docker" image inspect "$(base_tag)" >/dev/null 2>&1 || problems+=("no base image $(base_tag)")
  [ "$(cat "$wheelhouse/.key" 2>/dev/null)" = "$(wheelhouse_key)" ] ||
    problems+=("the wheelhouse $wheelhouse is missing or older than pyproject.toml")
  [ ${#problems[@]} -eq 0 ] && return 0
  echo "$(IFS=';'; echo "${problems[*]}"): run ./dev.sh setup as root (docker/dev-cache.sh prepare)"
  exit 1
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  check) check ;;
  build) build_image ;;
  image-tag) image_tag ;;
  base-tag) base_tag ;;
  prepare)
    if [ "$(id -u)" -ne 0 ]; then
      echo "The Docker test's cache needs root (dockerd, debootstrap): run ./dev.sh setup as root."
      exit 0
    fi
    build_wheelhouse
    mkdir -p "$cache"
    exec 9>>"$cache/users.lock"
    flock -s 9  # we use the daemon: no other run stops it meanwhile
    start >/dev/null
    build_base
    build_image
    flock -u 9
    stop
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
