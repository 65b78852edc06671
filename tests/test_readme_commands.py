"""The README's two set-up commands: a virtual environment first (a stock Debian/Ubuntu Python refuses a
bare `pip install`), the demo is the main job on embedded data, and `.ci/run` runs the test command."""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_quick_start_commands_make_a_venv_then_run_the_demo_and_the_tests():
    demo, tests = quick_start_commands()
    venv = "python3 -m venv .venv && .venv/bin/python -m pip install "
    assert demo.startswith(venv) and tests.startswith(venv)
    assert demo.endswith(".venv/bin/tox -e demo") and tests.endswith(".venv/bin/tox")
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert "countsbench run --method countsdiff --task pbmc_mcar" in tox["testenv:demo"]["commands"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3 -m venv")]
    assert [line.replace(" --quiet", "") for line in ci] == [tests]  # CI runs exactly the README's command
