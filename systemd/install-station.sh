#!/usr/bin/env bash
# Install the Yaguar station on a Debian/Ubuntu PC (run as root from a checkout of the repository):
# a `yaguar` system user, the code and its virtual environment in /opt/yaguar, the config in
# /etc/yaguar (naming the model folder), the default models fetched and verified into
# /var/lib/yaguar/models, the database created, a first admin, and the systemd unit started.
# Mosquitto's production config is installed by the broker set-up described in docs/operations.md.
#
# Settings (environment):
#   YAGUAR_ADMIN           the first admin's user name (default: admin); its password is printed once
#   YAGUAR_MODELS          models to fetch (default: the detector and the two species classifiers)
#   YAGUAR_MODEL_BASE_URL  fetch model files by name from here (a mirror) instead of the manifests' URLs
#   YAGUAR_ROOT            install under this folder instead of / (a test, or an image being built):
#                          no apt, no system user, no systemctl; everything else is the same
set -euo pipefail
root=${YAGUAR_ROOT:-}
[ -n "$root" ] || [ "$(id -u)" -eq 0 ] || { echo "run as root: sudo $0"; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
opt=$root/opt/yaguar
etc=$root/etc/yaguar
var=$root/var/lib/yaguar
models=${YAGUAR_MODELS:-yolox_nano mobilenet_v2_imagenet_quant mobilenet_v2_inat_bird_quant}
admin=${YAGUAR_ADMIN:-admin}
say() { printf '\n== %s\n' "$*"; }
as_owner() { [ -n "$root" ] || chown "$@"; }

if [ -z "$root" ]; then
  say "Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto ocl-icd-libopencl1 python3-venv >/dev/null
  id yaguar >/dev/null 2>&1 || useradd --system --home-dir /var/lib/yaguar --shell /usr/sbin/nologin yaguar
fi

say "Code and Python packages in $opt"
install -d "$opt"
tar -C "$src" --exclude=./.venv --exclude=./.git --exclude=./build -cf - . | tar -C "$opt" -xf -
python3 -m venv "$opt/.venv"
"$opt/.venv/bin/pip" install -q --upgrade pip
# train: species classifiers are trained on the station (`yaguar train`), and `yaguar` needs it to start
"$opt/.venv/bin/pip" install -q "$opt[station,opencl,postgres,train]"
bin=$opt/.venv/bin

say "Config in $etc"
install -d -m 0750 "$etc"
as_owner root:yaguar "$etc"
if [ ! -f "$etc/station.toml" ]; then
  # the example's paths, moved under the install root; the classifiers line lists the classifiers fetched
  classifiers=$("$bin/python" - $models <<'EOF'
import sys
from yaguar.engine.manifest import find_manifest
names = [n for n in sys.argv[1:] if find_manifest(n).kind == "classifier"]
print("[" + ", ".join(f'"{n}"' for n in names) + "]")
EOF
)
  sed -e "s|/var/lib/yaguar|$var|g" -e "s|^classifiers = .*|classifiers = $classifiers|" \
    "$src/systemd/station.example.toml" >"$etc/station.toml"
  chmod 0640 "$etc/station.toml"
  as_owner root:yaguar "$etc/station.toml"
fi
[ -f "$etc/station.env" ] || install -m 0640 /dev/null "$etc/station.env"
as_owner root:yaguar "$etc/station.env"
install -d -m 0750 "$var" "$var/models" "$var/media"
as_owner -R yaguar:yaguar "$var"

say "Models in $var/models, the database and a first admin"
# YAGUAR_MODEL_BASE_URL (a mirror) is read by `init` itself
# shellcheck disable=SC2086
"$bin/yaguar-station" --config "$etc/station.toml" init --models $models --admin "$admin"
as_owner -R yaguar:yaguar "$var"

if [ -z "$root" ]; then
  say "Service"
  install -m 0644 "$src/systemd/yaguar-station.service" /etc/systemd/system/yaguar-station.service
  systemctl daemon-reload
  systemctl enable --now yaguar-station
fi
say "What is still missing (yaguar-station doctor)"
"$bin/yaguar-station" --config "$etc/station.toml" doctor || true
echo
echo "Station installed. Set the broker and secrets in $etc/station.toml and $etc/station.env (docs/operations.md)."
