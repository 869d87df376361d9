"""Configuration files: the risk limits a desk trades under (TOML)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from blotter.domain.risk import RiskConfig, RiskLimits
from blotter.domain.values import InvalidValue, check_account
from blotter.venues.sim.catalog import INSTRUMENTS


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
        raw = msgspec.toml.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"risk file {path}: not valid TOML: {error}") from None
    # A misspelt limit would otherwise be left out without a word, and the desk would trade
    # without it.
    unknown = _unknown_keys(raw)
    if unknown:
        raise ConfigError(
            f"risk file {path}: unknown key {unknown[0]!r}; expected one of "
            f"{', '.join(_known_for(unknown[0]))}"
        )
    lone = _lone_windows(raw)
    if lone:
        raise ConfigError(
            f"risk file {path}: {lone[0]}.rate_window_seconds without max_orders_per_window; "
            "expected both in the same table (a window alone limits nothing)"
        )
    try:
        config = msgspec.convert(raw, RiskConfig)
    except msgspec.ValidationError as error:
        raise ConfigError(f"risk file {path}: {error}") from None
    _check_symbols(path, config)
    _check_accounts(path, config)
    return config


def _check_accounts(path: Path, config: RiskConfig) -> None:
    """An account spelt otherwise than the desk's tickets ("acc-delta") would limit nothing."""
    for name in config.accounts:
        try:
            check_account("account", name)
        except InvalidValue as invalid:
            raise ConfigError(
                f"risk file {path}: [accounts.{name}] names no account; expected {invalid.expected}"
            ) from None


def _check_symbols(path: Path, config: RiskConfig) -> None:
    """A misspelt instrument ("TSLAA") would restrict or limit nothing, without a word."""
    known = {instrument.symbol for instrument in INSTRUMENTS}
    tables = {"default": config.default}
    tables.update({f"accounts.{name}": limits for name, limits in config.accounts.items()})
    for where, limits in tables.items():
        for field, symbols in (
            ("restricted", limits.restricted),
            ("position_limits", limits.position_limits),
        ):
            unknown = sorted(set(symbols) - known)
            if unknown:
                raise ConfigError(
                    f"risk file {path}: {where}.{field} names {unknown[0]!r}, an instrument "
                    f"the desk does not trade; expected one of {', '.join(sorted(known))}"
                )


_CONFIG_KEYS = tuple(f.name for f in msgspec.structs.fields(RiskConfig))
_LIMIT_KEYS = tuple(f.name for f in msgspec.structs.fields(RiskLimits))


def _unknown_keys(raw: object) -> list[str]:
    """The keys of a risk file's tables that name no setting, as dotted paths."""
    if not isinstance(raw, dict):
        return []  # the type check names what is wrong
    unknown = [key for key in raw if key not in _CONFIG_KEYS]
    for where, table in _tables(raw):
        unknown += [f"{where}.{key}" for key in table if key not in _LIMIT_KEYS]
    return unknown


def _lone_windows(raw: object) -> list[str]:
    """The tables that set an order-rate window but not how many orders it allows."""
    return [
        where
        for where, table in _tables(raw)
        if "rate_window_seconds" in table and "max_orders_per_window" not in table
    ]


def _tables(raw: object) -> list[tuple[str, dict[str, object]]]:
    """The default table and each account's, as dotted names, where they are tables."""
    if not isinstance(raw, dict):
        return []
    tables: list[tuple[str, object]] = [("default", raw.get("default"))]
    accounts = raw.get("accounts")
    if isinstance(accounts, dict):
        tables += [(f"accounts.{name}", table) for name, table in accounts.items()]
    return [(where, table) for where, table in tables if isinstance(table, dict)]


def _known_for(dotted: str) -> tuple[str, ...]:
    return _LIMIT_KEYS if "." in dotted else _CONFIG_KEYS
