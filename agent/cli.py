"""``yaguar-agent --config agent.toml run|check-config|spool-status``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from yaguar.config import ConfigError
from yaguar.logs import setup_logging

from .config import AgentConfig, load_config
from .spool import spool_summary

DEFAULT_CONFIG = Path("/etc/yaguar/agent.toml")


def _describe(config: AgentConfig) -> list[str]:
    cap, pir, spool = config.capture, config.pir, config.spool
    pir_text = f"pin {pir.pin}, hold-off {pir.holdoff_s:g} s" if pir.enabled else "off"
    every = config.timelapse.interval_s
    return [
        f"device:    {config.device_id}",
        f"broker:    {config.mqtt.host}:{config.mqtt.port}" + (" (TLS)" if config.mqtt.tls else ""),
        f"camera:    {config.camera.type}",
        f"burst:     {cap.burst_size} frames, {cap.burst_interval_s:g} s apart, quality {cap.jpeg_quality}",
        f"PIR:       {pir_text}",
        f"timelapse: {f'every {every:g} s' if every else 'off'}",
        f"spool:     {spool.dir}, cap {spool.max_bytes // (1024 * 1024)} MiB, when full {spool.policy}",
        f"heartbeat: every {config.health.heartbeat_interval_s:g} s",
    ]


def _run(config: AgentConfig) -> int:
    from .service import Agent  # imports paho, gpiozero and the camera only when running

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        agent = Agent(config)
    except OSError as exc:  # e.g. a spool directory the service user may not write
        print(f"error: cannot start: {exc}", file=sys.stderr)
        return 1
    agent.run(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="yaguar-agent", description="Yaguar field agent (camera trap).")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help=f"TOML file (default {DEFAULT_CONFIG})"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the agent (what systemd starts)")
    sub.add_parser("check-config", help="read the config file and say whether it is usable")
    sub.add_parser("spool-status", help="how many frames wait for the station, without touching them")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc.report("yaguar-agent"), file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"{args.config}: the config is valid.")
        print("\n".join(_describe(config)))
        return 0
    if args.command == "spool-status":
        summary = spool_summary(config.spool.dir)
        if summary is None:
            print(f"no spool at {config.spool.dir} yet (the agent has not run).")
            return 0
        print(f"spool {config.spool.dir}:")
        print(f"  {summary['depth']} frames waiting ({summary['bytes']} bytes)")
        print(f"  oldest captured at: {summary['oldest_captured_at'] or '-'}")
        print(f"  newest seq: {summary['newest_seq'] if summary['newest_seq'] is not None else '-'}")
        print(f"  quarantined: {summary['quarantined']} frames")
        return 0
    setup_logging(config.log_level)
    return _run(config)


if __name__ == "__main__":
    sys.exit(main())
