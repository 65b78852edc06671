"""Resolving a grid before any work: every cell validated, identified and deduplicated.

The driver loads each task's data once and prepares every cell with it, so a mistake anywhere in the
grid (unknown name, bad ``--set`` value, unsupported task kind, missing data) fails before any cell
runs, and each cell gets the runner's identity (`cell_id`) and its shared-model key (`fit_id`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from countsbench.registry import REGISTRY
from countsbench.runner import CellRequest, prepare_cell
from countsbench.task import TaskData, default_data_dir


@dataclass(frozen=True)
class PlannedCell:
    request: CellRequest
    cell_id: str
    fit_id: str
    variant: str

    @property
    def label(self) -> str:
        split = "" if self.request.split == "test" else f" [{self.request.split}]"
        return f"{self.variant} on {self.request.task}, seed {self.request.seed}{split}"


def plan_cells(
    requests: Iterable[CellRequest], data_dir: Path | None = None, metrics: list[str] | None = None
) -> list[PlannedCell]:
    """Prepare every request (loading each task once); duplicates of a cell are dropped."""
    loaded: dict[str, TaskData] = {}
    planned: dict[str, PlannedCell] = {}
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    for request in requests:
        if request.task not in loaded:
            REGISTRY.check_supports(request.method, request.task)
            loaded[request.task] = REGISTRY.tasks.get(request.task).factory().load(root)
        cell = prepare_cell(request, data_dir, metrics, data=loaded[request.task])
        planned.setdefault(cell.cell_id, PlannedCell(request, cell.cell_id, cell.fit_id(), cell.variant))
    return list(planned.values())
