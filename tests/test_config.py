import re
from typing import Literal

import pytest

from countsbench.config import PROFILES, ConfigError, hyperparameters, parse_assignments, resolve_config
from countsbench.registry import REGISTRY


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
        ({"rate": "fast"}, "expected finite float"),
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


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_floats_must_be_finite(value):
    cls = REGISTRY.methods.get("countsdiff").cls
    with pytest.raises(ConfigError, match=f"lr={value!r}: expected finite float"):
        resolve_config(cls, "quick", {}, {"lr": value})


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("eta", "1.5", "eta in [0, 1]"),
        ("n_steps", "0", "n_steps >= 1"),
        ("batch_size", "0", "batch_size >= 1"),
        ("steps", "-5", "steps >= 1"),
        ("guidance", "-1", "guidance >= 0"),
        ("lr", "0", "lr > 0"),
    ],
)
def test_declared_ranges_are_checked_with_the_types(key, value, accepted):
    cls = REGISTRY.methods.get("countsdiff").cls
    with pytest.raises(ConfigError, match=re.escape(f"--set {key}={value!r}: expected") + ".*" + re.escape(accepted)):
        resolve_config(cls, "quick", {}, {key: value})
    edge = {"eta": "1", "n_steps": "1", "batch_size": "1", "steps": "1", "guidance": "0", "lr": "1e-9"}[key]
    assert resolve_config(cls, "quick", {}, {key: edge})[key] == float(edge)


def test_every_declared_range_names_a_hyperparameter_and_every_default_is_in_range():
    """A range whose name no registered method has is a typo; every profile's defaults are accepted."""
    from countsbench.config import hyperparameters
    from countsbench.task import TaskInfo

    declared, known = set(), set()
    for spec in REGISTRY.methods:
        for klass in spec.cls.__mro__:
            declared |= set(vars(klass).get("hyperparameter_ranges", {}))
        hps = hyperparameters(spec.cls)
        known |= set(hps)
        for profile in PROFILES:
            for kind in spec.kinds:
                info = TaskInfo("t", kind, 16, (16,), (), None)
                resolve_config(spec.cls, profile, spec.cls.defaults(profile, info), {})
        for hp in hps.values():
            if hp.range is not None and hp.default is not None:
                assert hp.default in hp.range, (spec.name, hp.name)
    assert declared and declared <= known, sorted(declared - known)
