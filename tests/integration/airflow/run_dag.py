"""Run in Airflow's environment: ``python run_dag.py <dag folder> <dag id> <YYYY-MM-DD>`` runs the DAG in-process
with ``dag.test()`` for that logical date (no scheduler) and prints, as its last line, the run's state and each
task's state and tries as JSON: ``dag.test()`` returns normally even when the run failed."""

from __future__ import annotations

import datetime as dt
import json
import sys


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    folder, dag_id, day = sys.argv[1:4]
    bag = DagBag(dag_folder=folder)
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    logical_date = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    run = bag.dags[dag_id].test(logical_date=logical_date)
    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        tasks = {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in tis}
    print(json.dumps({"state": str(run.state), "run_id": run.run_id, "tasks": tasks}))


if __name__ == "__main__":
    main()
