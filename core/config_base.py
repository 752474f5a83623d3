"""Pieces of configuration that the agent and the station share."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A config section: unknown keys are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


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
