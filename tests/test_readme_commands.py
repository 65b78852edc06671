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


def leaderboard_rows(task: str) -> dict[str, dict[str, str]]:
    """The "All metrics" table of ``leaderboards/<task>.md``: row name -> {column: cell}."""
    text = (ROOT / "leaderboards" / f"{task}.md").read_text()
    table = text[text.index("## All metrics") :].split("\n\n")[1]
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_the_one_draw_or_k_draws_advice_cites_the_committed_leaderboards():
    """Each figure the README quotes is the committed leaderboard's value, so a re-export that changes
    them fails here until the advice is updated."""
    readme = (ROOT / "README.md").read_text()
    advice = readme[readme.index("- **One draw or K draws**") : readme.index("- **Conditions**")]
    five, one = "countsdiff[n_samples=5]", "countsdiff"
    cited = {  # (task, metric column): the phrase, and its figures from {0} +- {1} (K = 5), {2} +- {3} (one draw)
        ("pbmc_mcar", "rmse ↓"): (
            "RMSE 2.28 ± 0.06 against 2.79 ± 0.05",
            "{0:.3g} ± {1:.1g} against {2:.3g} ± {3:.1g}",
        ),
        ("pbmc_mcar", "mae ↓"): ("MAE 1.04 against 1.22", "{0:.3g} against {2:.3g}"),
        ("pbmc_mcar", "crps ↓"): ("CRPS (0.76 against 1.22)", "{0:.2f} against {2:.3g}"),
        ("pbmc_mcar", "energy_distance ↓"): ("energy distance 0.042 against 0.262", "{2:.2g} against {0:.3g}"),
        ("pbmc_mnar", "rmse ↓"): ("RMSE 1.48 (mean of 5) against 1.84", "{0:.3g} (mean of 5) against {2:.3g}"),
    }
    flat_advice = " ".join(advice.split())
    for (task, column), (phrase, pattern) in cited.items():
        rows = leaderboard_rows(task)
        figures = [float(x) for name in (five, one) for x in rows[name][column].replace("*", "").split()[:3:2]]
        assert phrase in flat_advice, phrase
        assert pattern.format(*figures) in phrase, (task, column, pattern.format(*figures))
