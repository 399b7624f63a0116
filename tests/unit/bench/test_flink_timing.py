"""How the Flink bench times a job and says where the time went: rates between samples taken while the source was
still reading, the TaskManager reporter's lines of one job, and the CPU of process groups between snapshots."""

from __future__ import annotations

import pytest

from tests.bench import machine_cpu
from tests.bench.bench_flink import TaskManagerSamples, commit_rate, describe_tasks

TASK = 'task_name="Source:_source_1______Calc_2_____LocalWindowAggregate_3_",subtask_index="0"'
REPORTER = f"""# HELP flink_taskmanager_Status_JVM_CPU_Time CPU_Time
flink_taskmanager_Status_JVM_CPU_Time{{host="127_0_0_1",}} 2.5E9
flink_taskmanager_job_task_operator_numRecordsOut{{job_id="ours",operator_name="Source:_source_1_",}} 1200.0
flink_taskmanager_job_task_operator_numRecordsOut{{job_id="ours",operator_name="Calc_2_",}} 1100.0
flink_taskmanager_job_task_operator_numRecordsOut{{job_id="other",operator_name="Source:_source_1_",}} 99.0
flink_taskmanager_job_task_busyTimeMsPerSecond{{job_id="ours",{TASK},}} 900.0
flink_taskmanager_job_task_idleTimeMsPerSecond{{job_id="ours",{TASK},}} 100.0
flink_taskmanager_job_task_busyTimeMsPerSecond{{job_id="other",{TASK},}} 5.0
"""
MACHINE = machine_cpu.Snapshot(0.0, 0.0, 0.0, 0.0)


def test_commit_rate_counts_between_the_first_and_the_last_commit_with_records_left() -> None:
    # the last commit (lag 0) comes up to a checkpoint interval after the last record: it is not timed
    assert commit_rate([(0.0, 1000), (5.0, 800), (10.0, 300), (30.0, 0)], 1000) == (100.0, True)


def test_commit_rate_of_a_source_read_by_one_commit_includes_start_up() -> None:
    assert commit_rate([(0.0, 1000), (4.0, 0)], 1000) == (250.0, False)


def test_a_reporter_page_gives_the_job_s_source_records_cpu_and_task_times() -> None:
    sample = TaskManagerSamples("ours", "http://127.0.0.1:1").parse(REPORTER, 10.0, MACHINE)
    assert sample.read == 1200.0  # the source operators of this job only
    assert sample.cpu_s == 2.5
    assert sample.tasks == {
        "Source:_source_1______Calc_2_____LocalWindowAggregate_3_#0": {
            "busyTimeMsPerSecond": 900.0,
            "idleTimeMsPerSecond": 100.0,
        }
    }
    assert describe_tasks(sample.tasks) == "task ms/s busy/back-pressured/idle: Source:_source_1#0: 900/0/100"


def test_the_timed_interval_is_between_samples_taken_while_the_source_was_reading() -> None:
    samples = TaskManagerSamples("ours", "http://127.0.0.1:1")
    page = REPORTER.replace("} 1200.0", "} {read}")
    for at, read in [(1.0, 0), (2.0, 100), (3.0, 600), (4.0, 900), (5.0, 1000), (6.0, 1000)]:
        samples.samples.append(samples.parse(page.replace("{read}", str(read)), at, MACHINE))
    first, last = samples.reading(1000) or pytest.fail("no interval")
    assert (first.at, first.read, last.at, last.read) == (2.0, 100.0, 4.0, 900.0)
    assert samples.reading(100) is None  # read whole by the first sample: no interval


def test_usage_gives_each_group_s_cores_and_waiting_threads() -> None:
    start = machine_cpu.Snapshot(0.0, 0.0, 0.0, 0.0, {1: ("broker", 1.0, 0.0), 2: ("other", 5.0, 1.0)})
    end = machine_cpu.Snapshot(
        2.0, 300.0, 400.0, 1_000_000.0, {1: ("broker", 2.0, 1.0), 2: ("other", 6.0, 2.0), 3: ("other", 1.0, 0.0)}
    )
    used = machine_cpu.usage(start, end)
    assert used.machine_busy == 0.75
    assert used.pressure == 0.5
    assert used.cores == {"other": 1.0, "broker": 0.5}  # a process started meanwhile counts whole
    assert used.waiting == {"broker": 0.5, "other": 0.5}
    assert machine_cpu.describe(used).startswith("the machine's")
