"""The two lanes of the test session cover every test exactly once and keep the engines in one lane."""

from __future__ import annotations

from deploy.local.context import REPO_ROOT
from tests.session import ENGINE_LANE, lanes


def test_every_engine_lane_path_exists_and_the_service_lane_leaves_it_out() -> None:
    assert all((REPO_ROOT / path).is_dir() for path in ENGINE_LANE)
    engine, service = lanes("pytest", ["-x"])
    assert engine[1 : 1 + len(ENGINE_LANE)] == list(ENGINE_LANE) and engine[-1] == "-x"
    assert service[1] == "tests" and {f"--ignore={path}" for path in ENGINE_LANE} <= set(service)


def test_every_engine_test_folder_is_in_the_engine_lane() -> None:
    # Flink, Spark, Airflow and dbt run one at a time: any test folder naming one of them belongs to that lane.
    engines = ("flink", "spark", "airflow", "dbt")
    # (unit tests are pure: they start nothing)
    folders = [
        p for p in (REPO_ROOT / "tests" / "integration").rglob("*") if p.is_dir() and "__pycache__" not in p.parts
    ]
    with_engine = {str(p.relative_to(REPO_ROOT)) for p in folders if any(e in p.name for e in engines)}
    assert {f for f in with_engine if not any(f.startswith(path) for path in ENGINE_LANE)} == set()
