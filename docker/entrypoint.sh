#!/bin/bash
# The station container's start: a first config in the config volume, the models fetched and verified
# into the models volume when missing, the database created or upgraded, a first admin, then the station.
# `docker run IMAGE doctor` (or any other yaguar-station command) runs that command instead.
#
# Settings (environment), as for systemd/install-station.sh:
#   YAGUAR_MODELS          models to fetch (default: the detector and classifiers the config names)
#   YAGUAR_MODEL_BASE_URL  fetch model files by name from here (a mirror) instead of the manifests' URLs
#   YAGUAR_ADMIN           the first admin's user name (default: admin); its password is printed once
set -euo pipefail
bin=/opt/yaguar/venv/bin
config=${YAGUAR_CONFIG:-/etc/yaguar/station.toml}
say() { printf '[yaguar-docker] %s\n' "$*"; }

if [ ! -f "$config" ]; then
  cp /opt/yaguar/station.toml "$config"
  say "no config in the config volume: wrote the container's default to $config; edit it there"
fi
if [ "${1:-run}" != run ]; then
  exec "$bin/yaguar-station" --config "$config" "$@"
fi

# Models, database and first admin (yaguar-station init, as install-station.sh does); exit status 3: the
# models are not there, which the station survives (frames wait, kept), so it starts all the same.
status=0
# shellcheck disable=SC2086
"$bin/yaguar-station" --config "$config" init --admin "${YAGUAR_ADMIN:-admin}" \
  ${YAGUAR_MODELS:+--models $YAGUAR_MODELS} || status=$?
if [ "$status" -eq 3 ]; then
  say "models missing (above: which, and why). Put the files in the models volume, or set"
  say "YAGUAR_MODEL_BASE_URL to a mirror, and restart the container. The station starts anyway and keeps"
  say "every frame; they are analysed once the models are there."
elif [ "$status" -ne 0 ]; then
  say "could not prepare the station (above: why)"
  exit "$status"
fi
exec "$bin/yaguar-station" --config "$config" run
