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
# shellcheck source=../systemd/station-lib.sh
. /opt/yaguar/station-lib.sh
say() { printf '[yaguar-docker] %s\n' "$*"; }

if [ ! -f "$config" ]; then
  cp /opt/yaguar/station.toml "$config"
  say "no config in the config volume: wrote the container's default to $config; edit it there"
fi
if [ "${1:-run}" != run ]; then
  exec "$bin/yaguar-station" --config "$config" "$@"
fi

# The model folder and the models the config names (a broken config stops here, with its reason).
settings=$("$bin/python" - "$config" <<'PY'
import sys
from pathlib import Path
from yaguar.config import ConfigError
from yaguar.server.config import load_config
try:
    pipeline = load_config(Path(sys.argv[1])).pipeline
except ConfigError as exc:
    sys.exit(f"[yaguar-docker] the config {sys.argv[1]} is not usable: {exc}")
print(pipeline.model_dir or "/var/lib/yaguar/models")
print(" ".join([pipeline.detector, *pipeline.classifiers] if pipeline.enabled else []))
PY
)
model_dir=${settings%%$'\n'*}
config_models=${settings#*$'\n'}
models=${YAGUAR_MODELS:-$config_models}
if [ -n "$models" ]; then
  say "models in $model_dir: $models"
  # shellcheck disable=SC2086
  if ! fetch_models "$bin" "$model_dir" $models; then
    say "the models are missing from $model_dir (the models volume) and could not be fetched."
    say "Mount a folder holding them there, or set YAGUAR_MODEL_BASE_URL to a mirror, then restart the"
    say "container. The station starts anyway and keeps every frame; they are analysed once the models are there."
  fi
fi
"$bin/yaguar-station" --config "$config" db upgrade
first_admin "$bin" "$config" "${YAGUAR_ADMIN:-admin}"
exec "$bin/yaguar-station" --config "$config" run
