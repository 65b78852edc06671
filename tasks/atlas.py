"""Atlas-scale scRNA-seq imputation tasks: fetal, heart (user-supplied) and a synthetic atlas.

The data of each lives in ``<data_dir>/<atlas>.h5ad``, written by ``countsbench prepare``; without it
a task fails before any work, saying which public file to obtain and the command to run. Imputation
and metrics use a seeded subsample of the test (and validation) split (``max_eval_cells``): the paper's 50,000 cells
for fetal and heart, 5,000 for the synthetic atlas so that it runs on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from countsbench.registry import register_task
from countsbench.tasks.processed import read_processed, require_processed
from countsbench.tasks.scrna import LabelledCounts, MaskSpec, ScrnaImputationTask


@dataclass(frozen=True)
class Atlas:
    name: str
    cell_type_key: str
    condition_keys: tuple[str, ...]
    n_genes: int
    source: str
    mnar_slack: int | None  # the paper's absolute 5000 on the real atlases; None = 2% of valid
    max_eval_cells: int
    #: The paper's backbone for this atlas where it differs from the default (`TaskInfo.network_presets`).
    network_presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def how_to_obtain(self) -> str:
        if self.name == "synthetic":
            return "Simulate it with `countsbench prepare synthetic --n-cells 1000000`."
        return f"Obtain {self.source} and run `countsbench prepare {self.name} --input RAW.h5ad`."


PAPER_CELLS = 50_000
FETAL = Atlas(
    name="fetal",
    cell_type_key="cell_type",
    condition_keys=("cell_type", "disease", "sex", "batch", "development_day"),
    n_genes=1000,
    source="the human fetal gene-expression atlas of Cao et al. (2020) as an h5ad of raw counts "
    "(e.g. from the CELLxGENE collection of that paper)",
    mnar_slack=5000,
    max_eval_cells=PAPER_CELLS,
)
HEART = Atlas(
    name="heart",
    cell_type_key="cell_type",
    condition_keys=("cell_type", "batch", "gender", "age"),
    n_genes=500,
    source="the adult human heart cell atlas of Litvinukova et al. (2020), global raw h5ad (heartcellatlas.org)",
    mnar_slack=5000,
    max_eval_cells=PAPER_CELLS,
    # SPEC section 6: heart uses E = 128, H = 8, 50k steps, weight decay 1e-4
    network_presets={"transformer": {"paper": {"dim": 128, "n_heads": 8, "steps": 50_000, "weight_decay": 1e-4}}},
)
SYNTHETIC = Atlas(
    name="synthetic",
    cell_type_key="cell_type",
    condition_keys=("cell_type", "batch"),
    n_genes=1000,
    source="nothing: it is simulated",
    mnar_slack=None,
    max_eval_cells=5_000,
)
ATLASES = {atlas.name: atlas for atlas in (FETAL, HEART, SYNTHETIC)}


class AtlasTask(ScrnaImputationTask):
    """Imputation on a prepared atlas; conditions are all of the atlas' condition keys."""

    def __init__(self, atlas: Atlas, mask: MaskSpec) -> None:
        super().__init__(mask, max_eval_cells=atlas.max_eval_cells)
        self.atlas = atlas
        self.network_presets = atlas.network_presets

    def dataset_id(self) -> str:
        return self.atlas.name

    def read_dataset(self, data_dir: Path) -> LabelledCounts:
        return read_processed(require_processed(data_dir, self.atlas.name, self.atlas.how_to_obtain()))


def _register(atlas: Atlas, suffix: str, mask: MaskSpec, summary: str) -> None:
    name = f"{atlas.name}_{suffix}"
    register_task(name, kind="imputation", summary=f"{atlas.name} atlas: {summary}")(lambda: AtlasTask(atlas, mask))


for _atlas in (FETAL, HEART, SYNTHETIC):
    _register(_atlas, "mcar", MaskSpec("mcar", 0.5), "50% of valid test entries MCAR")
    _register(_atlas, "mnar", MaskSpec("mnar_low", 0.25, _atlas.mnar_slack), "25% MNAR biased to low values")
    if _atlas is not SYNTHETIC:
        _register(_atlas, "mnar_high", MaskSpec("mnar_high", 0.25, _atlas.mnar_slack), "25% MNAR biased to high values")
