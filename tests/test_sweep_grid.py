"""Grid expansion, option parsing and cell hashing for `countsbench sweep`."""

from __future__ import annotations

import pytest

from countsbench.config import ConfigError
from countsbench.executors.grid import SweepSpec, expand, load_sweep_file, parse_grid, parse_seeds, spec_from_file
from countsbench.executors.planning import plan_cells


def test_seed_ranges():
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0-2,7,1") == (0, 1, 2, 7)
    assert parse_seeds([3, 1]) == (3, 1)
    for bad in ("a", "3-1", "1-"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


def test_grid_expansion_crosses_values_and_scopes_method_keys():
    spec = SweepSpec(
        methods=("mean", "conditional_mean"),
        tasks=("pbmc_mcar", "pbmc_mnar"),
        seeds=(0, 1, 2),
        grid=parse_grid(["conditional_mean.condition_keys=all,bulk_labels"]),
    )
    cells = expand(spec)
    assert len(cells) == 2 * (1 + 2) * 3  # tasks x (mean: 1 config + conditional_mean: 2) x seeds
    assert {c.overrides.get("condition_keys") for c in cells if c.method == "conditional_mean"} == {
        "all",
        "bulk_labels",
    }
    assert all(not c.overrides for c in cells if c.method == "mean")
    assert all(c.split == "valid" for c in expand(spec, split="valid"))
    with pytest.raises(ConfigError, match="both in --set and --grid"):
        expand(SweepSpec(("conditional_mean",), ("pbmc_mcar",), overrides={"condition_keys": "all"}, grid=spec.grid))


def test_cells_are_identified_by_the_runner_hash_and_deduplicated():
    spec = SweepSpec(methods=("zero", "mean"), tasks=("pbmc_mcar", "pbmc_mnar"), seeds=(0, 1))
    cells = plan_cells(expand(spec) + expand(spec))  # duplicates dropped
    assert len(cells) == 8 and len({c.cell_id for c in cells}) == 8
    assert [c.cell_id for c in plan_cells(expand(spec))] == [c.cell_id for c in cells]  # stable
    fits = {}
    for cell in cells:  # pbmc_mcar and pbmc_mnar share the fitted model of a (method, seed)
        fits.setdefault(cell.fit_id, set()).add(cell.request.task)
    assert len(fits) == 4 and all(tasks == {"pbmc_mcar", "pbmc_mnar"} for tasks in fits.values())
    valid = plan_cells(expand(spec, split="valid"))
    assert not {c.cell_id for c in valid} & {c.cell_id for c in cells}
    assert not {c.fit_id for c in valid} & set(fits)  # fits that saw valid targets are never reused


def test_plan_fails_before_any_work_on_a_bad_cell():
    with pytest.raises(ConfigError):
        plan_cells(expand(SweepSpec(("conditional_mean",), ("pbmc_mcar",), overrides={"nope": "1"})))


def test_yaml_grid(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("methods: [zero, mean]\ntasks: pbmc_mcar\nseeds: 0-2\ngrid: {mean.x: [1, 2]}\n")
    spec = spec_from_file(load_sweep_file(path))
    assert spec.methods == ("zero", "mean") and spec.tasks == ("pbmc_mcar",) and spec.seeds == (0, 1, 2)
    assert spec.grid == {"mean.x": (1, 2)}
    path.write_text("methods: [zero]\nbogus: 1\n")
    with pytest.raises(ConfigError, match="keys among"):
        load_sweep_file(path)
