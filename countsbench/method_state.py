"""A fitted method saved without pickle: ``method.json`` (name, format, hyperparameters, the state's
structure) and ``arrays.npz`` (every array of the state, read with ``allow_pickle=False``).

A state is a nest of dicts, lists and tuples whose leaves are JSON scalars, numpy arrays or torch
tensors. Tuples and dicts with non-string keys are tagged in the JSON (``{"__tuple__": [...]}``,
``{"__items__": [[key, value], ...]}``) so they come back as they went in; an array becomes
``{"__array__": "a3"}`` (a tensor ``{"__tensor__": "a3"}``), the name of its entry in ``arrays.npz``.
Anything else (a fitted sklearn model, a graph object) is refused when saving, naming where it sits.
Loading only reads JSON and raw arrays, so a crafted model directory cannot run code.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from countsbench.safe_io import UnsafeFileError, write_atomic

STATE_FILE, ARRAYS_FILE = "method.json", "arrays.npz"
STATE_FORMAT = 1


class ModelStateError(TypeError):
    """A fitted state holds something that is not arrays or JSON values (the method cannot be saved)."""


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic):
        return _encode(value.item(), arrays, where)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise ModelStateError(f"{where}: an object array cannot be saved")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        key = f"a{len(arrays)}"
        arrays[key] = value.detach().cpu().numpy()
        return {"__tensor__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, arrays, f"{where}.{k}") for k, v in value.items()}
        items = [[_encode(k, arrays, where), _encode(v, arrays, f"{where}[{k!r}]")] for k, v in value.items()]
        return {"__items__": items}
    raise ModelStateError(f"{where}: a {type(value).__module__}.{type(value).__qualname__} is not arrays or JSON")


def _decode(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__tensor__" in value:
        import torch

        return torch.from_numpy(np.array(arrays[value["__tensor__"]]))
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__items__" in value:
        return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in value["__items__"]}
    return {k: _decode(v, arrays) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list | tuple) else key


def save_state(directory: Path, method: str, config: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    """Write ``state`` (with the method's name and hyperparameters) into ``directory``, each file atomically."""
    directory = Path(directory)
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(dict(state), arrays, "state")
    manifest = {"method": method, "format": STATE_FORMAT, "config": dict(config), "state": structure}
    text = json.dumps(manifest, indent=1, allow_nan=False)
    directory.mkdir(parents=True, exist_ok=True)

    def write_arrays(path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)

    write_atomic(directory / ARRAYS_FILE, write_arrays)
    write_atomic(directory / STATE_FILE, lambda path: path.write_text(text))


def load_state(directory: Path, method: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hyperparameters, state) saved by `save_state` for ``method``; `UnsafeFileError` when the files
    are missing, cut short, or hold something other than JSON and raw arrays."""
    directory = Path(directory)
    path = directory / STATE_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise UnsafeFileError(f"{directory} holds no saved method ({STATE_FILE} missing)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UnsafeFileError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STATE_FORMAT:
        raise UnsafeFileError(f"{path}: not a countsbench method state of format {STATE_FORMAT}")
    if manifest.get("method") != method:
        raise UnsafeFileError(f"{directory} holds a {manifest.get('method')!r} model, not {method!r}")
    try:
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UnsafeFileError(f"{directory / ARRAYS_FILE} is not a readable array file ({error})") from None
    try:
        state = _decode(manifest["state"], arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise UnsafeFileError(f"{path}: the saved state does not fit its arrays ({error})") from None
    if not isinstance(manifest.get("config"), dict) or not isinstance(state, dict):
        raise UnsafeFileError(f"{path}: config and state must be JSON objects")
    return manifest["config"], state
