"""Run in Airflow's environment: ``python inspect_dags.py <dag folder>`` parses the folder into a DagBag (no
metadata database is needed, none is reachable) and prints, as its last line, the import errors and what the
integrity test checks of each DAG and task as JSON."""

from __future__ import annotations

import json
import sys


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "file": dag.fileloc,
            "doc_md": bool((dag.doc_md or "").strip()),
            "tags": sorted(dag.tags),
            "max_active_runs": dag.max_active_runs,
            "catchup": dag.catchup,
            "schedule": str(getattr(dag.timetable, "expression", dag.timetable)),
            # an Asset schedule: the Assets every one of which starts a run
            "schedule_assets": sorted(
                str(getattr(asset, "name", asset))
                for asset in getattr(getattr(dag.timetable, "asset_condition", None), "objects", [])
            ),
            "dagrun_timeout_s": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
            "tasks": {
                task.task_id: {
                    "owner": task.owner,
                    "retries": task.retries,
                    "exponential_backoff": float(task.retry_exponential_backoff or 0),
                    "execution_timeout_s": task.execution_timeout.total_seconds() if task.execution_timeout else None,
                    "failure_callbacks": len(task.on_failure_callback or []),
                    "upstream": sorted(task.upstream_task_ids),
                    "outlets": [getattr(outlet, "name", str(outlet)) for outlet in task.outlets],
                }
                for task in dag.tasks
            },
        }
    errors = {path: str(error)[-500:] for path, error in bag.import_errors.items()}
    print(json.dumps({"import_errors": errors, "dags": dags}))


if __name__ == "__main__":
    main()
