"""``yaguar-station import`` refuses a wrong command line in one plain line, before touching anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config_files import write_station_config
from yaguar.server.cli import main


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--camera", "Cam 01/norte"], "must be 1-63 characters of a-z, 0-9 and '-'"),
        (["--camera", "cam-01", "--timezone", "Bogota"], "Bogota"),
        (["--camera", "cam-01", "--position", "4.61"], "write LAT,LON"),
        (["--camera", "cam-01", "--position", "95,-74"], "is not on Earth"),
    ],
)
def test_a_wrong_command_line_is_refused_and_nothing_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], said: str
) -> None:
    config = write_station_config(tmp_path)
    card = tmp_path / "DCIM"
    card.mkdir()
    assert main(["--config", str(config), "import", str(card), *extra]) == 2
    out = capsys.readouterr().out
    assert out.startswith("yaguar-station import: ") and said in out
    assert not (tmp_path / "station.db").exists() and not (tmp_path / "media").exists()
