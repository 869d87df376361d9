"""Configuration files: the risk limits a desk trades under (TOML)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
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
    config = RiskConfig(
        default=_limits(path, "default", raw.get("default", {})),
        accounts={
            name: _limits(path, _account_table(name), table)
            for name, table in _table(path, "accounts", raw.get("accounts", {})).items()
        },
    )
    _check_symbols(path, config)
    _check_accounts(path, config)
    return config


def _limits(path: Path, where: str, table: object) -> RiskLimits:
    """One table of limits; a value of the wrong kind or out of range is named with its
    table, key and value, and what was expected."""
    floated = _float_for_decimal(_table(path, where, table))
    if floated is not None:
        value = _shown(_written(table, floated, None))
        expected = _EXPECTED_ENTRY if "." in floated else _DECIMAL
        raise ConfigError(
            f"risk file {path}: [{where}] {floated} = {value}: expected {expected}; "
            f"unquoted, {value} is a binary float, which can round the figure"
        )
    try:
        return msgspec.convert(table, RiskLimits)
    except msgspec.ValidationError as error:
        invalid = error.__cause__
        if isinstance(invalid, InvalidValue):  # the range checks, once the types are right
            key, expected = invalid.field.replace("[", ".").rstrip("]"), invalid.expected
            written = _written(table, key, str(invalid.value))
        else:
            key = _wrong_key(table, _key_of(error))
            written = _written(table, key, None)
            expected = _EXPECTED_ENTRY if "." in key else _EXPECTED[key]
        said = f"[{where}] {key} = {_shown(written)}"
        raise ConfigError(f"risk file {path}: {said}: expected {expected}") from None


def _table(path: Path, where: str, value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        said = f"{where} = {_shown(value)}"
        raise ConfigError(f"risk file {path}: {said}: expected a [{where}] table")
    return value


def _float_for_decimal(table: dict[str, object]) -> str | None:
    """The first decimal limit, dotted, that the file gives as a TOML float: the float
    holds the nearest binary fraction, not the figure written (1e17 + 0.5 is 1e17)."""
    for key in _DECIMAL_KEYS:
        if isinstance(table.get(key), float):
            return key
    entries = table.get("position_limits")
    if isinstance(entries, dict):
        for symbol, limit in entries.items():
            if isinstance(limit, float):
                return f"position_limits.{symbol}"
    return None


def _key_of(error: msgspec.ValidationError) -> str:
    """The limit that a type error points at ("... - at `$.max_loss`")."""
    return str(error).rpartition("`$.")[2].split("`")[0].split("[")[0]


def _wrong_key(table: object, key: str) -> str:
    """The key at fault, dotted; in ``position_limits``, the instrument's entry."""
    value = _written(table, key, None)
    if key == "position_limits" and isinstance(value, dict):
        for symbol, limit in value.items():
            try:
                msgspec.convert(limit, Decimal)
            except msgspec.ValidationError:
                return f"{key}.{symbol}"
    return key


def _written(table: object, dotted: str, otherwise: object) -> object:
    """What the file says at ``dotted`` ("position_limits.TSLA") in ``table``."""
    for part in dotted.split("."):
        if not isinstance(table, dict) or part not in table:
            return otherwise
        table = table[part]
    return table


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _account_table(name: str) -> str:
    """An account's table as the file names it: quoted where TOML cannot write the name
    bare (a line break in it would split the one line that says what is wrong)."""
    return f"accounts.{name if _BARE_KEY.fullmatch(name) else json.dumps(name)}"


def _shown(value: object) -> str:
    """A value as it would be written in TOML (near enough: JSON's literals)."""
    return json.dumps(value, default=str)


_DECIMAL_KEYS = tuple(
    field.name for field in msgspec.structs.fields(RiskLimits) if field.type == (Decimal | None)
)
_DECIMAL = 'a decimal in quotes, e.g. "250000" (leave it out for no limit)'
_EXPECTED_ENTRY = 'a decimal in quotes, e.g. "5000"'  # one instrument's position limit
_EXPECTED = {  # what each limit takes, said when a file gives it something else
    **dict.fromkeys(_DECIMAL_KEYS, _DECIMAL),
    "price_collar_ticks": "a whole number of ticks",
    "max_orders_per_window": "a whole number of orders",
    "duplicate_window_seconds": "a number of seconds",
    "rate_window_seconds": "a number of seconds",
    "position_limits": 'a table of instrument = decimal in quotes, e.g. TSLA = "5000"',
    "restricted": 'a list of instruments, e.g. ["TSLA"]',
}


def _check_accounts(path: Path, config: RiskConfig) -> None:
    """An account spelt otherwise than the desk's tickets ("acc-delta") would limit nothing."""
    for name in config.accounts:
        try:
            check_account("account", name)
        except InvalidValue as invalid:
            raise ConfigError(
                f"risk file {path}: [{_account_table(name)}] names no account; "
                f"expected {invalid.expected}"
            ) from None


def _check_symbols(path: Path, config: RiskConfig) -> None:
    """A misspelt instrument ("TSLAA") would restrict or limit nothing, without a word."""
    known = {instrument.symbol for instrument in INSTRUMENTS}
    tables = {"default": config.default}
    tables.update({_account_table(name): limits for name, limits in config.accounts.items()})
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
        tables += [(_account_table(name), table) for name, table in accounts.items()]
    return [(where, table) for where, table in tables if isinstance(table, dict)]


def _known_for(dotted: str) -> tuple[str, ...]:
    return _LIMIT_KEYS if "." in dotted else _CONFIG_KEYS
