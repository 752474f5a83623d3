"""``yaguar-station alerts list | ack | preview`` against a real station database and config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.alert_harness import Harness, alerts_config
from tests.support.config_files import write_station_config
from yaguar.server.cli import main

ALERTS = {
    "enabled": True,
    "recipients": [{"name": "ana", "phone": "+573001112233", "language": "es"}],
    "rules": [{"name": "big-cats", "species": ["Panthera onca"], "severity": "high"}],
}


@pytest.mark.asyncio
async def test_list_ack_and_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "station.db"
    path = write_station_config(tmp_path, http={"public_url": "https://yaguar.example.org"}, alerts=ALERTS)
    h = Harness(f"sqlite:///{db}", alerts_config(None))
    try:
        h.add_event()
        await h.settle()
        code = h.alerts()[0].ack_code
    finally:
        await h.close()

    assert main(["--config", str(path), "alerts", "list"]) == 0
    out = capsys.readouterr().out
    assert code in out and "big-cats" in out and "ana: sent" in out

    assert main(["--config", str(path), "alerts", "ack", code.lower(), "--by", "ranger-7"]) == 0
    assert "acknowledged" in capsys.readouterr().out
    assert main(["--config", str(path), "alerts", "ack", code]) == 0
    assert "already acknowledged by ranger-7" in capsys.readouterr().out
    assert main(["--config", str(path), "alerts", "ack", "!!"]) == 2
    assert "is not an alert code" in capsys.readouterr().out

    assert main(["--config", str(path), "alerts", "preview", "--species", "Tayassu pecari"]) == 0
    out = capsys.readouterr().out
    assert "[es first] 1 segment(s), GSM-7" in out
    assert "cafuche en Sendero Norte" in out and "https://yaguar.example.org/e/123456" in out
