"""Risk limits from a TOML file: the example loads, a bad file says where and why."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from blotter.domain.risk import DEFAULT_RISK, RiskLimits
from blotter.runtime import config
from blotter.runtime.config import ConfigError, load_risk

EXAMPLE = Path(__file__).parents[2] / "resources" / "risk.example.toml"


def test_the_example_file_is_the_built_in_desk_limits_plus_one_account() -> None:
    risk = load_risk(EXAMPLE)
    assert risk.default == DEFAULT_RISK.default
    delta = risk.limits_for("ACC-DELTA")
    assert delta.max_order_notional == Decimal(250_000)
    assert delta.max_order_quantity == Decimal(100_000)  # from the default
    assert delta.max_orders_per_window == 50
    assert delta.restricted == frozenset({"SOL-USD"})
    assert risk.limits_for("ACC-ALPHA") == risk.default


def test_a_whole_number_needs_no_quotes(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text("[default]\nmax_order_notional = 250000\n[default.position_limits]\nTSLA = 5\n")
    limits = load_risk(path).default
    assert limits.max_order_notional == Decimal(250_000)
    assert limits.position_limits["TSLA"] == Decimal(5)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[default]\nmax_order_notional = "-5"\n', ("max_order_notional", "-5", "from 0 to")),
        (
            '[default]\nprice_collar_percent = "1e999999999"\n',
            ('price_collar_percent = "1e999999999": expected a decimal from 0 to 1,000,000,0',),
        ),
        (
            '[accounts."ACC-A\\nB"]\nmax_order_quantity = "5"\n',
            ('[accounts."ACC-A\\nB"] names no account',),
        ),
        ("[default]\nmax_order_quantity = [1]\n", ("[default] max_order_quantity = [1]",)),
        (
            '[default]\nmax_order_quantity = "abc"\n',
            ('[default] max_order_quantity = "abc": expected a decimal in quotes',),
        ),
        ("[default]\nmax_loss = true\n", ("[default] max_loss = true: expected a decimal",)),
        (
            '[accounts.ACC-DELTA]\nmax_order_notional = "1,000"\n',
            ('[accounts.ACC-DELTA] max_order_notional = "1,000": expected a decimal',),
        ),
        (
            '[accounts.ACC-1.position_limits]\nTSLA = "lots"\n',
            ('[accounts.ACC-1] position_limits.TSLA = "lots": expected a decimal',),
        ),
        (
            '[default.position_limits]\nTSLA = "-3"\n',
            ('[default] position_limits.TSLA = "-3": expected a decimal from 0 to',),
        ),
        ('[default]\nrestricted = "TSLA"\n', ('restricted = "TSLA": expected a list',)),
        ("[default]\nprice_collar_ticks = 1.5\n", ("price_collar_ticks = 1.5: expected a whole",)),
        ("default = 5\n", ("default = 5: expected a [default] table",)),
        ("[accounts]\nACC-1 = 3\n", ("accounts.ACC-1 = 3: expected a [accounts.ACC-1] table",)),
        ("[default\n", ("not valid TOML",)),
        (
            '[default]\nmax_ordr_quantity = "5"\n',
            ("'default.max_ordr_quantity'", "max_order_quantity"),
        ),
        ('[defaults]\nmax_order_quantity = "5"\n', ("'defaults'", "default, accounts")),
        ('[accounts.ACC-1]\ncredit = "5"\n', ("'accounts.ACC-1.credit'", "credit_limit")),
        ('[default]\nrestricted = ["TSLAA"]\n', ("default.restricted names 'TSLAA'", "TSLA")),
        ('[accounts.acc-1]\nmax_order_quantity = "5"\n', ("[accounts.acc-1]", "ACC-ALPHA")),
        (
            "[accounts.ACC-1]\nrate_window_seconds = 60\n",
            ("accounts.ACC-1.rate_window_seconds without max_orders_per_window",),
        ),
        (
            "[default]\nmax_orders_per_window = 1\nrate_window_seconds = 1e300\n",
            ("rate_window_seconds", "at most 86,400"),
        ),
        (
            "[default]\nmax_order_notional = 250000.5\n",
            ("[default] max_order_notional = 250000.5", "in quotes", "binary float"),
        ),
        (
            "[accounts.ACC-1.position_limits]\nTSLA = 1e17\n",
            ("[accounts.ACC-1] position_limits.TSLA = 1e+17", "in quotes", "binary float"),
        ),
        (
            '[accounts.ACC-1.position_limits]\n"BTCUSD" = "50"\n',
            ("accounts.ACC-1.position_limits names 'BTCUSD'", "BTC-USD"),
        ),
    ],
)
def test_a_bad_file_names_the_file_the_field_and_what_was_expected(
    tmp_path: Path, text: str, fragments: tuple[str, ...]
) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_risk(path)
    assert str(raised.value).startswith(f"risk file {path}: ")
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_every_limit_says_what_it_takes() -> None:
    assert set(config._EXPECTED) == {f.name for f in msgspec.structs.fields(RiskLimits)}


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_risk(tmp_path / "nowhere.toml")


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_bytes(b"\xff\xfe[default]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_risk(path)
