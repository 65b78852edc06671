"""Shared fixtures: a registry with built-ins loaded, a results directory, and a test plugin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from countsbench.registry import REGISTRY

PLUGIN_DIR = Path(__file__).parent / "plugins"


@pytest.fixture(scope="session", autouse=True)
def builtins_loaded() -> None:
    REGISTRY.load_builtins()


@pytest.fixture()
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "results"


@pytest.fixture()
def test_plugin(monkeypatch: pytest.MonkeyPatch) -> str:
    """Puts tests/plugins on sys.path and returns the name of the test plugin module."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    sys.modules.pop("countsbench_test_plugin", None)
    return "countsbench_test_plugin"


@pytest.fixture()
def one_thread():
    """One torch intra-op thread for the test: tiny networks run fastest on one, and on a loaded 2-core
    machine two spinning threads per process slowed training several-fold."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
