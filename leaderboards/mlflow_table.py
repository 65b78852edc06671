"""The leaderboard inside the MLflow UI: one run named ``leaderboard`` in each task's experiment.

Its artifacts are the leaderboard as MLflow tables (`MlflowClient.log_table`, which the UI's Artifacts
tab shows as a table): ``leaderboard.json`` (the headline metrics) and ``leaderboard_all.json`` (every
metric), cells as in the terminal (mean ± s.e., * best beyond noise), plus ``leaderboard.csv`` (raw
numbers, `countsbench.leaderboards.export.csv_text`) and ``leaderboard.md``. Its description (the run's
``mlflow.note.content``) is the headline table in Markdown (then the legend), shown on the run's
overview page.

The driver publishes it after it logs (`countsbench run`, the end of a sweep, `countsbench evaluate`).
`log_table` appends to a table already logged, so a changed leaderboard is logged on a fresh run and
the previous leaderboard run is deleted: an experiment holds one, and it is its newest run, at the top
of the UI's run list. An unchanged leaderboard (same ``countsbench.leaderboard_digest``) is not logged
again.
"""

from __future__ import annotations

import hashlib
import json

from countsbench.leaderboards.export import LEGEND, csv_text, markdown, markdown_table
from countsbench.leaderboards.table import Leaderboard, task_leaderboard
from countsbench.tracking import KIND_TAG, LEADERBOARD_RUN, NOTE_TAG, TAG_PREFIX, Tracker, source_tags

DIGEST_TAG = TAG_PREFIX + "leaderboard_digest"
TABLES = {"headline": "leaderboard.json", "all": "leaderboard_all.json"}


def frames(board: Leaderboard) -> dict[str, object]:
    """The tables logged: artifact name -> DataFrame of the text cells."""
    import pandas as pd

    tables = {}
    for choice, artifact in TABLES.items():
        columns = board.columns(choice)
        tables[artifact] = pd.DataFrame(board.table(metrics=columns), columns=board.header(columns))
    return tables


def publish(tracker: Tracker, experiment: str) -> str | None:
    """Make the experiment's ``leaderboard`` run show its current leaderboard; returns its run id
    (None when the experiment has no cell runs)."""
    board = task_leaderboard(experiment, tracker.results_dir)
    if not board.rows:
        return None
    tables = frames(board)
    raw = csv_text(board)
    content = {name: frame.to_dict(orient="split") for name, frame in tables.items()}
    digest = hashlib.sha256(json.dumps([content, raw], sort_keys=True).encode()).hexdigest()[:16]
    experiment_id = tracker.experiment_id(experiment)
    client = tracker.client
    with tracker.exclusive("leaderboard"):
        query = f"tags.`{KIND_TAG}` = 'leaderboard'"
        previous = client.search_runs([experiment_id], filter_string=query, max_results=100)
        current = [run for run in previous if run.data.tags.get(DIGEST_TAG) == digest and run.info.status == "FINISHED"]
        if current:
            for run in previous:  # a duplicate left by drivers that shared no lock (a remote tracking server)
                if run.info.run_id != current[0].info.run_id:
                    client.delete_run(run.info.run_id)
            return current[0].info.run_id
        from countsbench.provenance import git_commit

        headline = board.columns("headline")
        note = "\n".join([*markdown_table(board, headline), "", LEGEND])
        tags = {KIND_TAG: "leaderboard", DIGEST_TAG: digest, NOTE_TAG: note, **source_tags(git_commit())}
        run_id = client.create_run(experiment_id, run_name=LEADERBOARD_RUN, tags=tags).info.run_id
        for artifact, frame in tables.items():
            client.log_table(run_id, frame, artifact)
        client.log_text(run_id, raw, "leaderboard.csv")
        client.log_text(run_id, markdown(board), "leaderboard.md")
        client.set_terminated(run_id, status="FINISHED")
        for run in previous:
            client.delete_run(run.info.run_id)
    return run_id
