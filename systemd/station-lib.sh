# Steps shared by systemd/install-station.sh and the Docker image's entrypoint (docker/entrypoint.sh).
# Sourced, not run. BIN is the bin folder of the virtual environment with yaguar installed.

# fetch_models BIN MODEL_DIR NAME...: each model fetched into MODEL_DIR and checked against its manifest's
# sha256 (a file already there and right is kept, not fetched again). With YAGUAR_MODEL_BASE_URL set, the
# files come from that mirror by name, and so do labels files that no manifest has a URL for
# (e.g. coco80.names). Fails (non-zero) when a model could not be fetched or verified.
fetch_models() {
  local bin=$1 dir=$2 name file
  shift 2
  for name in "$@"; do
    if [ -n "${YAGUAR_MODEL_BASE_URL:-}" ]; then
      file=$("$bin/python" -c "from yaguar.engine.manifest import find_manifest; print(find_manifest('$name').file)")
      "$bin/yaguar" models --model-dir "$dir" fetch "$name" --no-progress --url "$YAGUAR_MODEL_BASE_URL/$file" || return 1
    else
      "$bin/yaguar" models --model-dir "$dir" fetch "$name" --no-progress || return 1
    fi
  done
  if [ -n "${YAGUAR_MODEL_BASE_URL:-}" ]; then
    "$bin/python" - "$dir" "$YAGUAR_MODEL_BASE_URL" "$@" <<'EOF' || return 1
import sys
import urllib.request
from pathlib import Path
from yaguar.engine.manifest import find_manifest
folder, base = Path(sys.argv[1]), sys.argv[2]
for name in sys.argv[3:]:
    labels = find_manifest(name).labels.file
    if labels and not (folder / labels).is_file():
        with urllib.request.urlopen(f"{base}/{labels}", timeout=60) as answer:
            (folder / labels).write_bytes(answer.read())
        print(f"{name}: labels {labels} fetched")
EOF
  fi
  "$bin/yaguar" models --model-dir "$dir" verify "$@"
}

# first_admin BIN CONFIG NAME: a first dashboard admin NAME with a random password, printed once;
# nothing when the database has users already.
first_admin() {
  local bin=$1 config=$2 admin=$3 password
  if "$bin/python" - "$config" <<'EOF'
import sys
from pathlib import Path
from sqlalchemy import func, select
from yaguar.server.config import load_config
from yaguar.server.dashboard.models import User
from yaguar.storage import make_db_engine, make_session_factory
config = load_config(Path(sys.argv[1]))
with make_session_factory(make_db_engine(config.storage.database_url))() as db:
    sys.exit(0 if db.scalar(select(func.count()).select_from(User)) else 1)
EOF
  then
    echo "There are dashboard users already: no new admin."
  else
    password=$("$bin/python" -c "import secrets; print(secrets.token_urlsafe(12))")
    printf '%s\n' "$password" | "$bin/yaguar-station" --config "$config" user add "$admin" --role admin --password-stdin
    echo "First admin: $admin, password: $password   (shown once: change it on the Users page)"
  fi
}
