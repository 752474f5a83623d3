"""The station's and the agent's config files, for tests that run ``yaguar-station --config FILE`` or
``yaguar-agent --config FILE`` (a command, a process): built from dicts, checked with the program's own
config model, and written with tomli-w, so that no test writes TOML by hand and a misspelt key fails in
the test rather than in a child process. Tests of bad config files write theirs by hand, on purpose."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomli_w

from yaguar.agent.config import parse_config
from yaguar.server.config import config_from_dict

Sections = Mapping[str, Mapping[str, Any]]


def storage_in(folder: Path) -> dict[str, str]:
    """The ``[storage]`` of a test station: its SQLite file and its media inside ``folder``."""
    return {"database_url": f"sqlite:///{folder / 'station.db'}", "media_root": str(folder / "media")}


def merged(base: Sections, over: Sections) -> dict[str, dict[str, Any]]:
    """``over``'s sections on top of ``base``'s, key by key within a section (``mqtt={"port": 1}`` keeps
    the base's other ``[mqtt]`` keys)."""
    sections = {name: dict(values) for name, values in base.items()}
    for name, values in over.items():
        sections.setdefault(name, {}).update(values)
    return sections


def _plain(value: Any) -> Any:
    """``value`` with its paths as strings: TOML has no path type."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def write_station_config(folder: Path, file: str = "station.toml", **sections: Mapping[str, Any]) -> Path:
    """Write ``folder/file``: the SQLite file and media in ``folder`` (``storage=`` overrides them), and
    ``sections`` as its tables, e.g. ``pipeline={"enabled": True, "model_dir": models}``."""
    return write_sections(folder / file, merged({"storage": storage_in(folder)}, sections))


def write_sections(path: Path, sections: Sections, env: Mapping[str, str] | None = None) -> Path:
    """Write exactly ``sections`` into ``path``, once the station's own config model has taken them.
    ``env``: the secrets the station will be given (``YAGUAR_TWILIO_AUTH_TOKEN``), for that check only;
    they are never written into the file."""
    return _checked_write(path, sections, lambda data: config_from_dict(data, env={} if env is None else env))


def write_agent_config(path: Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` (top-level keys such as ``device_id``, and sections) as the agent's config file
    ``path``, once the agent's own config model has taken it."""
    return _checked_write(path, data, lambda plain: parse_config(plain, environ={}))


def _checked_write(path: Path, data: Mapping[str, Any], check: Callable[[dict[str, Any]], object]) -> Path:
    plain = _plain(data)
    check(plain)  # what the program would refuse is refused here, in the test
    path.write_text(tomli_w.dumps(plain), encoding="utf-8")
    return path
