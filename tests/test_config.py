from typing import Literal

import pytest

from countsbench.config import ConfigError, hyperparameters, parse_assignments, resolve_config


class Example:
    def __init__(
        self,
        steps: int = 10,
        rate: float = 0.5,
        flag: bool = False,
        mode: Literal["a", "b"] = "a",
        name: str = "x",
        cap: int | None = None,
    ) -> None:
        pass


def test_hyperparameters_come_from_the_constructor():
    assert set(hyperparameters(Example)) == {"steps", "rate", "flag", "mode", "name", "cap"}


def test_profile_then_overrides_with_types():
    config = resolve_config(
        Example, "quick", {"steps": 20}, {"rate": "1", "flag": "true", "mode": "b", "cap": "3", "name": "y"}
    )
    assert config == {"steps": 20, "rate": 1.0, "flag": True, "mode": "b", "name": "y", "cap": 3}
    assert resolve_config(Example, "paper", {}, {"cap": "none"})["cap"] is None


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"stepz": "3"}, "unknown hyperparameter"),
        ({"steps": "1.5"}, "expected int"),
        ({"steps": "ten"}, "expected int"),
        ({"rate": "fast"}, "expected float"),
        ({"flag": "maybe"}, "expected bool"),
        ({"mode": "c"}, "one of 'a', 'b'"),
        ({"steps": True}, "expected int"),
    ],
)
def test_bad_overrides_are_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(Example, "quick", {}, overrides)


def test_unknown_profile_and_bad_assignments():
    with pytest.raises(ConfigError, match="unknown profile"):
        resolve_config(Example, "fast", {}, {})
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["steps"])
    with pytest.raises(ConfigError, match="twice"):
        parse_assignments(["steps=1", "steps=2"])
    assert parse_assignments(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
