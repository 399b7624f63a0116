"""A Flink job's failures as the stream stage names them: each entry of its exception history as its root cause."""

from __future__ import annotations

from deploy.flink_jobs import root_causes

REFUSED = """org.apache.flink.util.FlinkException: Global failure triggered by OperatorCoordinator for 'Source'.
\tat org.apache.flink.runtime.operators.coordination.OperatorCoordinatorHolder.failJob(...)
Caused by: org.apache.flink.util.FlinkRuntimeException: Failed to list subscribed topic partitions due to
\tat org.apache.flink.connector.kafka.source.enumerator.KafkaSourceEnumerator.checkPartitionChanges(...)
Caused by: org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to access topics: [orders]
"""


def test_each_failure_is_its_last_cause_newest_first() -> None:
    history = {
        "exceptionHistory": {
            "entries": [
                {"exceptionName": "org.apache.flink.util.FlinkException", "stacktrace": REFUSED},
                {"exceptionName": "IllegalStateException", "stacktrace": "\njava.lang.IllegalStateException: x"},
                {"exceptionName": "java.io.IOException"},
            ],
            "truncated": False,
        }
    }
    assert root_causes(history) == [
        "org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized to access topics: [orders]",
        "java.lang.IllegalStateException: x",
        "java.io.IOException",
    ]


def test_a_job_that_never_failed_has_none() -> None:
    assert root_causes({"exceptionHistory": {"entries": [], "truncated": False}}) == []
    assert root_causes({}) == []
