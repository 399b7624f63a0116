"""Freightline's Airflow DAGs: thin schedules of the project's own jobs (``dags/README.md``)."""
