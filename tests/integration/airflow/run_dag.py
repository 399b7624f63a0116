"""Run in Airflow's environment: ``python run_dag.py <dag folder> <dag id> <YYYY-MM-DD> [<task id pattern>]`` runs
the DAG in-process with ``dag.test()`` for that logical date (no scheduler; tasks matching the pattern are marked
successful without running) and prints, as its last line, the run's state, each task's state and tries, and the
Asset events the run emitted, as JSON: ``dag.test()`` returns normally even when the run failed."""

from __future__ import annotations

import datetime as dt
import json
import sys


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    folder, dag_id, day = sys.argv[1:4]
    bag = DagBag(dag_folder=folder)
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    logical_date = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    pattern = sys.argv[4] if len(sys.argv) > 4 else None
    run = bag.dags[dag_id].test(logical_date=logical_date, mark_success_pattern=pattern)
    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        tasks = {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in tis}
        events = (
            session.query(AssetModel.name)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run.run_id)
            .all()
        )
    result = {"state": str(run.state), "run_id": run.run_id, "tasks": tasks, "assets": [name for (name,) in events]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
