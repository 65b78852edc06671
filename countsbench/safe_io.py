"""Files that may come from someone else or be cut short: nothing runs code on load, nothing is half-written.

- `write_atomic`: write through a temporary file in the same directory, fsync, then rename over the
  target, so a reader sees the old file or the new one, never a truncated one.
- `tree_checksums` / `verify_checksums`: sha256 of every file under a directory (a model cache's manifest).
- `load_numpy_pickle`: a pickle reader that rebuilds numpy arrays and plain containers only (the CIFAR-10
  python batches); any other global (``os.system``, ``builtins.exec``) is refused before it is called.
- `inside`: a relative path read from a file, refused when it would escape its root directory.
- `warn`: the one-line ``countsbench: warning: ...`` on stderr.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO


class UnsafeFileError(ValueError):
    """A file that is corrupt, asks to run code, or names a path outside its directory."""


def warn(message: str) -> None:
    print(f"countsbench: warning: {message}", file=sys.stderr, flush=True)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_atomic(path: Path, write: Callable[[Path], object], suffix: str = "") -> Path:
    """Call ``write(temporary_path)``, fsync it, and rename it over ``path``; the temporary file is removed
    on failure. ``suffix`` keeps an extension some writers insist on (``.h5ad``, ``.npz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".partial{suffix}")
    os.close(fd)
    partial = Path(name)
    try:
        write(partial)
        fsync_file(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_checksums(directory: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``directory`` (except the names in ``exclude``)."""
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in exclude)
    return {p.relative_to(directory).as_posix(): sha256_file(p) for p in files}


def verify_checksums(directory: Path, expected: Mapping[str, str], exclude: tuple[str, ...] = ()) -> None:
    """Raise `UnsafeFileError` naming the first file that is missing, extra or changed."""
    actual = tree_checksums(directory, exclude)
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            raise UnsafeFileError(f"{Path(directory) / name} is missing")
        if name not in expected:
            raise UnsafeFileError(f"{Path(directory) / name} is not in the checksum manifest")
        if actual[name] != expected[name]:
            raise UnsafeFileError(f"{Path(directory) / name} does not match its checksum (corrupt or changed)")


#: The globals a pickled numpy array needs (numpy 1.x and 2.x module paths); nothing else is rebuilt.
NUMPY_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3: str -> bytes, nothing more
    }
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in NUMPY_GLOBALS:
            raise UnsafeFileError(f"refusing to load {module}.{name}: only numpy arrays and plain containers")
        return super().find_class(module, name)


def load_numpy_pickle(handle: BinaryIO, encoding: str = "ASCII") -> Any:
    """``pickle.load`` restricted to numpy arrays, dicts, lists, tuples, strings, bytes and numbers."""
    try:
        return _NumpyOnlyUnpickler(handle, encoding=encoding).load()
    except UnsafeFileError:
        raise
    except Exception as error:  # truncated or not a pickle
        raise UnsafeFileError(f"{getattr(handle, 'name', 'file')} is not a readable pickle ({error})") from None


def inside(root: Path, relative: str | os.PathLike, what: str = "path") -> Path:
    """``root / relative`` when it stays inside ``root`` (no absolute path, no ``..`` out of it)."""
    root = Path(root).resolve()
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise UnsafeFileError(f"{what} {str(relative)!r} must be relative to {root} without '..'")
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise UnsafeFileError(f"{what} {str(relative)!r} leads outside {root}")
    return resolved
