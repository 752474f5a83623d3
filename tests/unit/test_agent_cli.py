"""``yaguar-agent`` in plain words: check-config, spool-status, and one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.config_files import write_agent_config
from yaguar.agent.cli import main
from yaguar.agent.spool import Spool

EXAMPLE = Path(__file__).resolve().parents[2] / "systemd" / "agent.example.toml"


def test_check_config_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "the config is valid" in out
    assert "device:    cam-01" in out and "hold-off 10 s" in out


def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"  # by hand: a policy the agent refuses, which the config writer would too
    path.write_text(
        'device_id = "cam-01"\n[camera]\ntype = "replay"\nfolder = "/x"\n[spool]\npolicy = "keep_all"\n'
    )
    assert main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("yaguar-agent: spool.policy") and err.count("\n") == 1


def test_spool_status_reads_without_touching(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool_dir = tmp_path / "spool"
    replay = {"type": "replay", "folder": "/x"}
    path = write_agent_config(
        tmp_path / "agent.toml", {"device_id": "cam-01", "camera": replay, "spool": {"dir": spool_dir}}
    )
    assert main(["--config", str(path), "spool-status"]) == 0
    assert "no spool" in capsys.readouterr().out
    spool = Spool(spool_dir)
    payload = (images / "classic" / "dog.jpg").read_bytes()
    spool.put(
        payload,
        device="cam-01",
        capture_id="e.0",
        event_id="e",
        burst_index=0,
        burst_size=1,
        captured_at=datetime.now(UTC),
        trigger="test",
    )
    partial = spool.pending_dir / ".tmp-00000000000000000009.frame.1"
    partial.write_bytes(b"in progress")  # an agent writing right now: spool-status must not remove it
    assert main(["--config", str(path), "spool-status"]) == 0
    out = capsys.readouterr().out
    assert f"1 frames waiting ({len(payload)} bytes)" in out
    assert partial.exists()
