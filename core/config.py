"""The one config mechanism of Yaguar: a TOML file read into pydantic sections that refuse unknown keys,
secrets from the environment or from systemd credentials, and one ``ConfigError`` with one format.

The agent's and the station's configs, and the engine's model manifests, are all read through here:

    config = load(StationConfig, path, secrets=STATION_SECRETS)

``Secret("YAGUAR_MQTT_PASSWORD", ("mqtt", "password"))`` fills ``[mqtt] password`` from the variable
``YAGUAR_MQTT_PASSWORD`` or, when that is unset, from the file of that name in
``$CREDENTIALS_DIRECTORY`` (systemd's ``LoadCredential=YAGUAR_MQTT_PASSWORD:/etc/yaguar/...``), so a
secret never has to live in the TOML file or in the unit's environment.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"  # set by systemd for a unit with LoadCredential=


class Section(BaseModel):
    """A config section: unknown keys are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class ConfigError(ValueError):
    """A configuration that cannot be used. ``problems`` holds one line per problem
    (``where: what``); ``str()`` is the first of them, plus how many more, on one line."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems) or ["invalid"]
        more = len(self.problems) - 1
        super().__init__(self.problems[0] + (f" (and {more} more)" if more else ""))

    def report(self, program: str) -> str:
        """What a command prints: each problem on its own line, after the program's name."""
        return "\n".join(f"{program}: {problem}" for problem in self.problems)


@dataclass(frozen=True)
class Secret:
    """A value that never lives in the file: the environment variable (also the name of the systemd
    credential) and where it goes in the config."""

    variable: str
    path: tuple[str, ...]
    comma_separated: bool = False  # a list, e.g. "token1,token2"


def read_secret(variable: str, env: Mapping[str, str]) -> str | None:
    """The variable's value, else the systemd credential of that name, else None."""
    value = env.get(variable)
    if value:
        return value
    directory = env.get(CREDENTIALS_DIRECTORY)
    if not directory:
        return None
    path = Path(directory) / variable
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the credential {path}: {exc.strerror or exc}") from None
    return value or None


def put_secrets(data: dict[str, Any], secrets: Iterable[Secret], env: Mapping[str, str]) -> None:
    for secret in secrets:
        value = read_secret(secret.variable, env)
        if value is None:
            continue
        table = data
        for key in secret.path[:-1]:
            table = table.setdefault(key, {})
            if not isinstance(table, dict):  # e.g. `mqtt = 5` in the file: say so, do not crash
                raise ConfigError(f"{key}: must be a [{key}] table, not {type(table).__name__}")
        table[secret.path[-1]] = (
            [part.strip() for part in value.split(",") if part.strip()] if secret.comma_separated else value
        )


def read_toml(path: Path | str, what: str = "config file") -> dict[str, Any]:
    """The file's tables, or ``ConfigError`` saying in one line why it cannot be read."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"cannot read {what} {path}: it does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {what} {path}: it is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def problems_of(exc: ValidationError) -> list[str]:
    """One ``where: what`` line per validation error."""
    return [f"{'.'.join(str(part) for part in err['loc']) or 'config'}: {err['msg']}" for err in exc.errors()]


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_of(exc)) from None


def from_dict(
    model: type[M],
    data: dict[str, Any],
    secrets: Iterable[Secret] = (),
    env: Mapping[str, str] | None = None,
) -> M:
    """Validate ``data`` (left unchanged) with the secrets filled in from ``env`` (default: os.environ)."""
    data = copy.deepcopy(data)
    put_secrets(data, secrets, os.environ if env is None else env)
    return validate(model, data)


def load(
    model: type[M],
    path: Path | str | None,
    secrets: Iterable[Secret] = (),
    env: Mapping[str, str] | None = None,
) -> M:
    """Read and validate a TOML config file (the defaults when ``path`` is None)."""
    return from_dict(model, read_toml(path) if path is not None else {}, secrets, env)


class TlsConfig(Section):
    """TLS to the broker: the CA that signed its certificate, and a client certificate when it asks."""

    ca_file: Path = Field(description="CA certificate that signed the broker's certificate")
    cert_file: Path | None = Field(default=None, description="client certificate (its CN is the identity)")
    key_file: Path | None = Field(default=None, description="client key, with cert_file")

    @model_validator(mode="after")
    def _cert_and_key(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: give both cert_file and key_file, or neither")
        return self
