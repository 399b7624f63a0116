"""The test command's secret scan: a new secret fails it, an audited baseline entry or an allowlisted line does not,
and line numbers moving does not matter."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy import secret_scan

REPO_BASELINE = Path(secret_scan.REPO_ROOT) / secret_scan.BASELINE
LEAK = 'db_password = "Vq7-this-looks-real"\n'  # pragma: allowlist secret


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "app.py").write_text("x = 1\n")
    baseline = json.loads(REPO_BASELINE.read_text())
    baseline["results"] = {}
    (tmp_path / secret_scan.BASELINE).write_text(json.dumps(baseline))
    return tmp_path


def test_a_clean_tree_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert secret_scan.main(["--root", str(repo)]) == 0
    assert "no secret outside the audited baseline" in capsys.readouterr().out


def test_a_new_secret_fails_naming_file_line_and_detector_not_the_value(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "settings.py").write_text("# config\n" + LEAK)
    assert secret_scan.main(["--root", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "possible secret: settings.py:2: Secret Keyword" in err
    assert "Vq7" not in err


def test_an_audited_false_positive_passes_wherever_its_line_moves(repo: Path) -> None:
    (repo / "settings.py").write_text(LEAK)
    assert secret_scan.main(["--root", str(repo), "--update"]) == 0
    baseline = json.loads((repo / secret_scan.BASELINE).read_text())
    assert [entry.get("is_secret") for entry in baseline["results"]["settings.py"]] == [None]
    assert secret_scan.main(["--root", str(repo)]) == 1  # in the baseline, but not audited yet
    baseline["results"]["settings.py"][0]["is_secret"] = False
    (repo / secret_scan.BASELINE).write_text(json.dumps(baseline))
    (repo / "settings.py").write_text("\n\n\n" + LEAK)
    assert secret_scan.main(["--root", str(repo)]) == 0
    assert secret_scan.main(["--root", str(repo), "--update"]) == 0  # the audit mark survives an update
    assert json.loads((repo / secret_scan.BASELINE).read_text())["results"]["settings.py"][0]["is_secret"] is False


def test_the_repository_baseline_is_fully_audited() -> None:
    baseline = json.loads(REPO_BASELINE.read_text())
    assert baseline["results"], "the baseline lists the known false positives"
    assert all(entry["is_secret"] is False for entries in baseline["results"].values() for entry in entries)
    assert shutil.which("git")
