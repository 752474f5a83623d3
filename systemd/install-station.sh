#!/usr/bin/env bash
# Install the Yaguar station on a Debian/Ubuntu PC (run as root from a checkout of the repository):
# a `yaguar` system user, the code and its virtual environment in /opt/yaguar, the config in
# /etc/yaguar, the systemd unit. Mosquitto's production config is installed by the broker set-up
# described in docs/operations.md.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "run as root: sudo $0"; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto ocl-icd-libopencl1 python3-venv >/dev/null

id yaguar >/dev/null 2>&1 || useradd --system --home-dir /var/lib/yaguar --shell /usr/sbin/nologin yaguar
install -d -o root -g root /opt/yaguar
cp -a "$src/." /opt/yaguar/
python3 -m venv /opt/yaguar/.venv
/opt/yaguar/.venv/bin/pip install -q --upgrade pip
/opt/yaguar/.venv/bin/pip install -q '/opt/yaguar[station,opencl]'

install -d -o root -g yaguar -m 0750 /etc/yaguar
[ -f /etc/yaguar/station.toml ] || install -o root -g yaguar -m 0640 "$src/systemd/station.example.toml" /etc/yaguar/station.toml
[ -f /etc/yaguar/station.env ] || install -o root -g yaguar -m 0640 /dev/null /etc/yaguar/station.env
install -d -o yaguar -g yaguar -m 0750 /var/lib/yaguar

install -m 0644 "$src/systemd/yaguar-station.service" /etc/systemd/system/yaguar-station.service
systemctl daemon-reload
/opt/yaguar/.venv/bin/yaguar-station --config /etc/yaguar/station.toml check-config
systemctl enable --now yaguar-station
echo "Station installed. Create the first admin: yaguar-station --config /etc/yaguar/station.toml user add NAME --role admin"
