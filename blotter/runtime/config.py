"""Configuration files: the risk limits a desk trades under (TOML)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from blotter.domain.risk import RiskConfig


class ConfigError(ValueError):
    """A configuration file that cannot be used, with where and why."""


def load_risk(path: Path) -> RiskConfig:
    """The risk limits in a TOML file: a ``[default]`` table, and ``[accounts.NAME]`` tables
    whose limits override it for one account (see resources/risk.example.toml)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"risk file {path}: {error.strerror or error}") from None
    try:
        return msgspec.toml.decode(data, type=RiskConfig)
    except msgspec.ValidationError as error:
        raise ConfigError(f"risk file {path}: {error}") from None
    except msgspec.DecodeError as error:
        raise ConfigError(f"risk file {path}: not valid TOML: {error}") from None
