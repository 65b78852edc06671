"""Hyperparameters: read from a method's constructor, defaulted by profile, overridden by ``--set``.

A method's hyperparameters are the keyword arguments of its ``__init__`` (with type hints). A profile
(`quick` or `paper`) only changes their defaults. ``--set key=value`` overrides any of them; an unknown
key, a value of the wrong type, a non-finite float or a value outside the hyperparameter's declared
`Range` (``hyperparameter_ranges`` on the method class) is a `ConfigError`, never silently ignored, and
raised before any work starts.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PROFILES = ("quick", "paper")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class ConfigError(ValueError):
    """An unknown profile or key, or a value that does not fit the hyperparameter's type."""


@dataclass(frozen=True)
class Range:
    """Accepted numbers: ``low <= value <= high`` (``<`` on a side marked open); None: unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


#: The ranges most hyperparameters need.
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
UNIT_INTERVAL = Range(0, 1)
#: Seeds: what `numpy.random.default_rng` and `torch.manual_seed` both accept.
SEED_RANGE = Range(0, 2**32 - 1)


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    annotation: Any
    default: Any
    range: Range | None = None


def hyperparameters(cls: type) -> dict[str, Hyperparameter]:
    """The keyword arguments of ``cls.__init__`` with their type hints and defaults.

    An ``__init__`` that also takes ``**config`` forwards the rest to its parent's, whose arguments are
    then hyperparameters too (walked along the MRO). ``hyperparameter_defaults`` declared on a class (or
    its parents; the most derived wins) replace constructor defaults: a method that differs from its parent
    only in defaults declares just those (Blackout). ``hyperparameter_ranges`` (merged the same way) give
    each its accepted `Range`; a base class may declare ranges of names only some subclasses have.
    """
    found: dict[str, Hyperparameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        init = inspect.unwrap(init)
        hints = typing.get_type_hints(init)
        forwards = False
        for name, parameter in inspect.signature(init).parameters.items():
            if name == "self" or parameter.kind == parameter.VAR_POSITIONAL:
                continue
            if parameter.kind == parameter.VAR_KEYWORD:
                forwards = True
                continue
            if parameter.default is inspect.Parameter.empty:
                raise ConfigError(f"{klass.__name__}.__init__ argument {name!r} needs a default value")
            found.setdefault(name, Hyperparameter(name, hints.get(name, type(parameter.default)), parameter.default))
        if not forwards:
            break
    overrides: dict[str, Any] = {}
    ranges: dict[str, Range] = {}
    for klass in reversed(cls.__mro__):
        overrides.update(klass.__dict__.get("hyperparameter_defaults", {}))
        ranges.update(klass.__dict__.get("hyperparameter_ranges", {}))
    unknown = sorted(set(overrides) - set(found))
    if unknown:
        raise ConfigError(f"{cls.__name__}.hyperparameter_defaults: unknown hyperparameter(s) {', '.join(unknown)}")
    return {
        name: dataclasses.replace(hp, default=overrides.get(name, hp.default), range=ranges.get(name))
        for name, hp in found.items()
    }


def _options(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def coerce(hp: Hyperparameter, value: Any) -> Any:
    """``value`` (a string from the command line, or a Python value) as the hyperparameter's type, within
    its range."""
    for option in _options(hp.annotation):
        try:
            coerced = _coerce_one(option, value)
        except (TypeError, ValueError):
            continue
        numeric = isinstance(coerced, int | float) and not isinstance(coerced, bool)
        if numeric and hp.range is not None and coerced not in hp.range:
            break
        return coerced
    accepted = f"expected {_describe(hp.annotation)}"
    if hp.range is not None:
        accepted += f", with {hp.name} {hp.range.describe()}"
    raise ConfigError(f"--set {hp.name}={value!r}: {accepted}")


def _describe(annotation: Any) -> str:
    parts = []
    for option in _options(annotation):
        if typing.get_origin(option) is typing.Literal:
            parts.append("one of " + ", ".join(map(repr, typing.get_args(option))))
        elif option is type(None):
            parts.append("none")
        elif option is float:
            parts.append("finite float")
        else:
            parts.append(getattr(option, "__name__", str(option)))
    return " or ".join(parts)


def _coerce_one(option: Any, value: Any) -> Any:
    text = value.strip() if isinstance(value, str) else None
    if option is type(None):
        if value is None or (text is not None and text.lower() in ("none", "null")):
            return None
        raise ValueError
    if typing.get_origin(option) is typing.Literal:
        for allowed in typing.get_args(option):
            if value == allowed or (text is not None and text == str(allowed)):
                return allowed
        raise ValueError
    if option is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError
    if option is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if text is not None:
            return int(text)
        raise ValueError
    if option is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            number = float(value)
        elif text is not None:
            number = float(text)
        else:
            raise ValueError
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    if option is str:
        if isinstance(value, str):
            return value
        raise ValueError
    raise TypeError(f"unsupported hyperparameter type {option}")


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a pair without ``=`` or a repeated key is an error."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        if key in parsed:
            raise ConfigError(f"--set {key} given twice")
        parsed[key] = value
    return parsed


def resolve_config(
    cls: type, profile: str, profile_defaults: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Constructor defaults, then the profile's defaults, then the user's overrides, all type-checked."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    known = hyperparameters(cls)
    for source, values in (("profile", profile_defaults), ("--set", overrides)):
        unknown = sorted(set(values) - set(known))
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            where = f"{cls.__name__} {source}"
            raise ConfigError(f"{where}: unknown hyperparameter(s) {', '.join(unknown)}; known: {names}")
    config = {name: hp.default for name, hp in known.items()}
    config.update(resolve_values(cls, profile_defaults, known))
    config.update(resolve_values(cls, overrides, known))
    return config


def resolve_values(cls: type, values: Mapping[str, Any], known: Mapping[str, Hyperparameter]) -> dict[str, Any]:
    """``values`` type- and range-checked against ``known`` (an unknown key is an error)."""
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown hyperparameter(s) {', '.join(unknown)}")
    return {name: coerce(known[name], value) for name, value in values.items()}


def parse_seed(text: str) -> int:
    """A seed from the command line: an integer in `SEED_RANGE` (argparse ``type=``)."""
    import argparse

    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if seed not in SEED_RANGE:
        raise argparse.ArgumentTypeError(f"seed {text} is outside {SEED_RANGE.describe()}")
    return seed
