"""The owner's top-level folders as subpackages of countsbench, in a source checkout.

The repository keeps ``methods/``, ``tasks/``, ``metrics/`` and ``leaderboards/`` at its top level (the
owner's layout), but they are imported as ``countsbench.methods`` and so on: an installed wheel puts them
inside the package (``[tool.setuptools.package-dir]`` in pyproject.toml), so nothing generic lands in
site-packages. When ``countsbench`` is imported straight from a checkout (``python -m countsbench`` or
pytest run in the repository root, where the source package shadows the installed one), this finder
resolves ``countsbench.<folder>`` to the folder beside the package. Installed, it does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

OWNER_FOLDERS = ("methods", "tasks", "metrics", "leaderboards")


class OwnerFolderFinder(importlib.abc.MetaPathFinder):
    """Finds ``countsbench.<folder>`` (only those) in the checkout root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        package, _, folder = fullname.rpartition(".")
        if package != "countsbench" or folder not in OWNER_FOLDERS:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [str(self.root)])


def install(package_dir: Path) -> None:
    """Add the finder when ``package_dir`` is a checkout's source package (its folders beside it)."""
    root = package_dir.parent
    in_checkout = (root / "pyproject.toml").is_file() and (root / "methods" / "__init__.py").is_file()
    installed = any(isinstance(finder, OwnerFolderFinder) for finder in sys.meta_path)
    if in_checkout and not (package_dir / "methods").exists() and not installed:
        sys.meta_path.append(OwnerFolderFinder(root))


install(Path(__file__).resolve().parent)
