"""What a failed Spark job's error says: the last exception of its log, with the root of a Java exception."""

from __future__ import annotations

from deploy.spark import _cause

PY4J_LOG = """\
Traceback (most recent call last):
  File "batch_spark/daily_batch.py", line 80, in <module>
    raise Py4JJavaError(
py4j.protocol.Py4JJavaError: An error occurred while calling o1001.exists.
: java.io.IOException: Error accessing gs://freightline-raw/finance
\tat com.google.cloud.hadoop.gcsio.GoogleCloudStorageImpl.getObject(GoogleCloudStorageImpl.java:2001)
Caused by: javax.net.ssl.SSLHandshakeException: PKIX path building failed
\tat java.base/sun.security.ssl.Alert.createSSLException(Alert.java:131)
Caused by: sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path
\tat java.base/sun.security.validator.PKIXValidator.doBuild(PKIXValidator.java:434)
""".splitlines()


def test_a_java_failure_names_its_root_cause() -> None:
    assert _cause(PY4J_LOG) == (
        "py4j.protocol.Py4JJavaError: An error occurred while calling o1001.exists. (caused by "
        "sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path)"
    )


def test_a_python_failure_is_its_last_exception_line() -> None:
    log = ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: no day given", ""]
    assert _cause(log) == "ValueError: no day given"


def test_a_log_without_an_exception_gives_its_last_line() -> None:
    assert _cause(["starting", "killed", ""]) == "killed"
    assert _cause([]) == ""
