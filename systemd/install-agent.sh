#!/usr/bin/env bash
# Install the Yaguar field agent on Raspberry Pi OS (Bookworm or later), as root:
#
#   sudo ./systemd/install-agent.sh [--device-id cam-01] [--from /path/to/yaguar-checkout-or-wheel]
#
# What it does (idempotent: run it again to upgrade):
#   - apt packages: python3-venv, python3-picamera2 (libcamera), python3-lgpio (gpiozero's pin driver)
#   - a system user `yaguar-agent` in the gpio and video groups, no login shell, no home
#   - a virtual environment in /opt/yaguar/venv (with the system site packages, for picamera2/libcamera)
#     and `pip install yaguar[agent]` into it
#   - /etc/yaguar/agent.toml from the example (never overwritten), /etc/yaguar/agent.env for the password
#   - /var/lib/yaguar-agent (the spool) is created by systemd (StateDirectory=)
#   - the unit, enabled and started once the config says it is valid
set -euo pipefail

DEVICE_ID=""
SOURCE=""
PREFIX=/opt/yaguar
CONF_DIR=/etc/yaguar
SERVICE_USER=yaguar-agent
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --device-id) DEVICE_ID="$2"; shift 2 ;;
        --from) SOURCE="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ $EUID -ne 0 ]]; then
    echo "run as root: sudo $0 $*" >&2
    exit 1
fi
if [[ -n "$DEVICE_ID" && ! "$DEVICE_ID" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]]; then
    echo "device id '$DEVICE_ID' must be 1-63 characters of a-z, 0-9 and '-'" >&2
    exit 2
fi
SOURCE="${SOURCE:-$(dirname "$HERE")}"

echo "==> system packages"
apt-get update -q
apt-get install -y -q python3-venv python3-pip python3-lgpio
apt-get install -y -q python3-picamera2 || echo "   (no python3-picamera2: use a USB or replay camera)"

echo "==> user $SERVICE_USER"
for group in gpio video; do
    getent group "$group" >/dev/null || groupadd --system "$group"
done
if ! id "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --groups gpio,video "$SERVICE_USER"
else
    usermod -a -G gpio,video "$SERVICE_USER"
fi

echo "==> virtual environment in $PREFIX/venv"
mkdir -p "$PREFIX"
if [[ ! -x "$PREFIX/venv/bin/python" ]]; then
    # System site packages: picamera2 and libcamera come from apt, not from PyPI.
    python3 -m venv --system-site-packages "$PREFIX/venv"
fi
"$PREFIX/venv/bin/pip" install --quiet --upgrade pip
# A checkout, a wheel file or a package name: pip takes "<it>[agent]" for each.
"$PREFIX/venv/bin/pip" install --quiet "${SOURCE}[agent]"

echo "==> configuration in $CONF_DIR"
install -d -m 0755 "$CONF_DIR"
if [[ ! -f "$CONF_DIR/agent.toml" ]]; then
    install -m 0644 "$HERE/agent.example.toml" "$CONF_DIR/agent.toml"
    if [[ -n "$DEVICE_ID" ]]; then
        sed -i "s/^device_id = .*/device_id = \"$DEVICE_ID\"/" "$CONF_DIR/agent.toml"
    fi
    echo "   wrote $CONF_DIR/agent.toml: edit the broker address and camera"
fi
if [[ ! -f "$CONF_DIR/agent.env" ]]; then
    install -m 0640 -g "$SERVICE_USER" /dev/null "$CONF_DIR/agent.env"
    echo "# YAGUAR_MQTT_PASSWORD=..." >"$CONF_DIR/agent.env"
    echo "   wrote $CONF_DIR/agent.env: put the MQTT password there"
fi

echo "==> systemd unit"
install -m 0644 "$HERE/yaguar-agent.service" /etc/systemd/system/yaguar-agent.service
systemctl daemon-reload
systemctl enable yaguar-agent.service
if "$PREFIX/venv/bin/yaguar-agent" --config "$CONF_DIR/agent.toml" check-config; then
    systemctl restart yaguar-agent.service
    echo "==> started. Follow it with: journalctl -fu yaguar-agent"
else
    echo "==> the config is not valid yet: fix $CONF_DIR/agent.toml, then: systemctl start yaguar-agent" >&2
fi
