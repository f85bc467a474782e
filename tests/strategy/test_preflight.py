"""The preflight before a strategy may run: the real validation process, real strategy code."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradepipe.botconfig import BotConfig
from tradepipe.strategy import StrategyLoadError
from tradepipe.strategy.preflight import (
    SMOKE_CANDLES,
    StrategyCheck,
    StrategyValidator,
    check_strategy_source,
)

REPO = Path(__file__).resolve().parents[2]

HEADER = """
from tradepipe.strategy import Enter, Strategy, StrategyParameters


class Params(StrategyParameters):
    threshold: float = 0.5

"""


def strategy(body: str, *, module: str = "") -> bytes:
    """A strategy file whose on_candle is `body` (indented for the method)."""
    method = textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
    source = (
        HEADER
        + textwrap.dedent(module)
        + "\nclass Probe(Strategy[Params]):\n    Parameters = Params\n\n"
        + f"    def on_candle(self, context):\n{method}\n"
    )
    return source.encode()


def line_of(source: bytes, text: str) -> int:
    return next(i for i, line in enumerate(source.decode().splitlines(), 1) if text in line)


def config(**parameters: object) -> BotConfig:
    return BotConfig(
        capital_per_trade=10,
        take_profit_pct=1,
        stop_loss_pct=1,
        max_holding_seconds=60,
        maker_order_timeout_seconds=10,
        strategy_parameters=dict(parameters),
    )


def check(source: bytes, **options: object) -> StrategyCheck:
    return check_strategy_source(source, Path("/strategies/probe.py"), **options)  # type: ignore[arg-type]


def refusal(source: bytes, **options: object) -> StrategyLoadError:
    with pytest.raises(StrategyLoadError) as caught:
        check(source, **options)
    return caught.value


@pytest.mark.parametrize("name", ["ema_rsi", "lgbm_threshold"])
def test_the_shipped_strategies_pass_and_decide_on_every_smoke_candle(name: str) -> None:
    path = REPO / "strategies" / f"{name}.py"
    result = check_strategy_source(path.read_bytes(), path)
    assert result.decisions == SMOKE_CANDLES
    assert result.class_name in {"EmaRsi", "LgbmThreshold"}
    assert result.entries > 0  # the synthetic candles do reach their entry conditions


def test_each_bots_parameters_are_validated_and_the_error_names_the_bot() -> None:
    source = strategy("return None")
    check(source, configs={"fine": config(threshold=0.7)})
    error = refusal(source, configs={"fine": config(), "typo": config(treshold=0.7)})
    assert "bot 'typo'" in str(error) and "treshold" in str(error)


def test_bots_that_share_a_config_share_one_smoke_run_and_the_error_names_them() -> None:
    source = strategy("return None")
    fifty = {f"bot{index:02d}": config(threshold=0.7) for index in range(50)}
    result = check(source, configs={**fifty, "other": config(threshold=0.6)})
    # the default run, one for the fifty, one for "other"
    assert result.decisions == 3 * SMOKE_CANDLES
    error = refusal(source, configs={"a": config(treshold=1), "b": config(treshold=1)})
    assert "bot 'a' (and 1 more with the same config)" in str(error)


def test_parameters_reach_the_smoke_run() -> None:
    source = strategy(
        """
        if self.parameters.threshold > 0.9:
            raise ValueError("threshold too high for this market")
        return None
        """
    )
    check(source, configs={"low": config(threshold=0.2)})
    error = refusal(source, configs={"high": config(threshold=0.95)})
    assert "ValueError: threshold too high" in str(error)
    assert error.line == line_of(source, "raise ValueError")


def test_an_exception_on_ordinary_candles_is_refused_with_its_line() -> None:
    source = strategy('return Enter() if context.features["no_such_feature"] else None')
    error = refusal(source)
    assert "on_candle raised KeyError" in str(error)
    assert str(error).startswith(f"/strategies/probe.py:{line_of(source, 'no_such_feature')}:")


def test_an_answer_that_is_not_an_entry_is_refused() -> None:
    error = refusal(strategy('return "buy"'))
    assert "on_candle returned str, expected Enter, Exit or None" in str(error)


def test_state_that_is_not_json_is_refused() -> None:
    source = strategy("return None", module="import datetime\n").replace(
        b"    def on_candle",
        b"    def on_save(self):\n        return {'at': datetime.datetime.now()}\n\n"
        b"    def on_candle",
    )
    assert "on_save must return a JSON object" in str(refusal(source))


def test_an_endless_loop_is_interrupted_at_its_line_within_the_budget() -> None:
    source = strategy(
        """
        total = 0
        while True:
            total += 1
        """
    )
    error = refusal(source, budget_seconds=0.3)
    assert "did not finish within the smoke run's budget of 0.3 s" in str(error)
    assert error.line in {line_of(source, "while True"), line_of(source, "total += 1")}


def test_a_module_that_hangs_at_import_is_interrupted_too() -> None:
    source = strategy("return None", module="while True:\n    pass\n")
    error = refusal(source, budget_seconds=0.3)
    assert "loading the file did not finish" in str(error)


def test_a_loop_that_swallows_the_interruption_is_killed_and_the_next_check_works() -> None:
    validator = StrategyValidator()
    try:
        source = strategy(
            """
            import time
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
            """
        )
        with pytest.raises(StrategyLoadError, match="validation process was killed"):
            validator.check(source, Path("/strategies/stubborn.py"), budget_seconds=0.2)
        fine = validator.check(strategy("return None"), Path("/strategies/fine.py"))
        assert fine.decisions == SMOKE_CANDLES
    finally:
        validator.close()


def test_a_file_that_kills_its_process_is_refused_and_the_next_check_works() -> None:
    validator = StrategyValidator()
    try:
        source = strategy("return None", module="import os\nos._exit(3)\n")
        with pytest.raises(StrategyLoadError, match="validation process died"):
            validator.check(source, Path("/strategies/exits.py"))
        assert validator.check(strategy("return None"), Path("/strategies/ok.py")).entries == 0
    finally:
        validator.close()


def test_prints_of_a_strategy_cannot_corrupt_the_answers() -> None:
    source = strategy('print("deciding", context.candle.close)\nreturn Enter()')
    result = check_strategy_source(source, Path("/strategies/chatty.py"))
    assert result.entries == SMOKE_CANDLES


def test_syntax_errors_and_missing_classes_are_refused_as_the_loader_refuses_them() -> None:
    error = refusal(b"def broken(:\n")
    assert "syntax error" in str(error) and error.line == 1
    assert "defines no Strategy subclass" in str(refusal(b"x = 1\n"))


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget"):
        check(strategy("return None"), budget_seconds=0)
