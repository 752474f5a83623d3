"""Tests that need the shared data skip without it, and fail instead when YAGUAR_REQUIRE_DATA=1 (CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.prerequisites import require_data


def test_missing_data_skips_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YAGUAR_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("YAGUAR_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="shared data"):
        require_data()


def test_missing_data_fails_when_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YAGUAR_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("YAGUAR_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="YAGUAR_REQUIRE_DATA=1"):
        require_data()
    monkeypatch.setenv("YAGUAR_DATA_DIR", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="models is not in the shared data"):
        require_data("models")
    (tmp_path / "models").mkdir()
    assert require_data("models") == tmp_path / "models"
