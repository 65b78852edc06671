"""Packaging: the owner's folders install as ``countsbench.<folder>``; nothing generic lands in site-packages."""

from __future__ import annotations

import importlib.metadata
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import countsbench

ROOT = Path(__file__).resolve().parent.parent
OWNER_FOLDERS = ("methods", "tasks", "metrics", "leaderboards")


def _folder_packages() -> list[str]:
    names = []
    for top in ("countsbench", *OWNER_FOLDERS):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            parts = init.parent.relative_to(ROOT).parts
            names.append(".".join(parts) if top == "countsbench" else "countsbench." + ".".join(parts))
    return names


def test_every_folder_is_a_listed_namespaced_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(setuptools["packages"]) == sorted(_folder_packages())
    assert setuptools["package-dir"] == {f"countsbench.{folder}": folder for folder in OWNER_FOLDERS}


def test_installed_distribution_has_no_generic_top_level_package():
    # the installed distribution (site-packages), not a build's egg-info in the checkout root
    installed = list(importlib.metadata.distributions(name="countsbench", path=site.getsitepackages()))
    assert installed, "countsbench is not installed in this environment"
    files = installed[0].files or []
    tops = {file.parts[0] for file in files if file.suffix == ".py"}
    generic = tops & set(OWNER_FOLDERS)
    assert not generic, f"the distribution installs top-level packages {sorted(generic)}"


def test_owner_folders_import_as_subpackages_and_not_top_level():
    code = (
        "import sys, countsbench.methods, countsbench.tasks, countsbench.metrics, countsbench.leaderboards;"
        "from countsbench import REGISTRY; REGISTRY.load_builtins();"
        "print(sorted(n for n in ('methods', 'tasks', 'metrics', 'leaderboards') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert Path(countsbench.__file__).parent.name == "countsbench"
