"""Released schema versions, rebuilt from git history.

A released version of a subject is the expanded value schema its topic had in a commit of the current
branch (``HEAD``), as the catalogue of that same commit named it. For every commit that touched the schema
files or the catalogue, oldest first, the schema files and catalogue of that commit are read with real git
(``git log``, ``git ls-tree``, ``git cat-file``) and expanded exactly as the working tree is. Each distinct
expanded text counts once per subject, tagged with the first commit that carried it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from schemas.catalogue import CatalogueError, parse_catalogue
from schemas.loader import AVRO_SUFFIX, MappingSource, expand, to_text

log = logging.getLogger(__name__)


class GitError(RuntimeError):
    """A git command failed."""


@dataclass(frozen=True)
class Commit:
    sha: str
    date: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class ReleasedVersion:
    """One distinct committed version of a subject's expanded schema."""

    subject: str
    number: int
    commit: Commit
    value_schema: str
    text: str


@dataclass
class History:
    """Released versions per subject (oldest first) and what could not be read."""

    versions: dict[str, list[ReleasedVersion]] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason_empty: str | None = None

    def of(self, subject: str) -> list[ReleasedVersion]:
        return self.versions.get(subject, [])


def _git(repo: Path, args: Sequence[str], stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError as error:
        raise GitError("git is not installed") from error
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def repository_root(path: Path) -> Path | None:
    """Top folder of the git work tree containing ``path``, or None when it is not in one."""
    try:
        out = _git(path, ["rev-parse", "--show-toplevel"])
    except GitError:
        return None
    return Path(out.decode().strip())


def _read_blobs(repo: Path, shas: Sequence[str]) -> dict[str, bytes]:
    """Contents of many blobs through one ``git cat-file --batch`` process."""
    unique = sorted(set(shas))
    if not unique:
        return {}
    out = _git(repo, ["cat-file", "--batch"], stdin=("\n".join(unique) + "\n").encode())
    blobs: dict[str, bytes] = {}
    position = 0
    for sha in unique:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].decode().split()
        if len(header) != 3:
            raise GitError(f"git cat-file: unexpected answer {header!r} for {sha}")
        size = int(header[2])
        start = header_end + 1
        blobs[header[0]] = out[start : start + size]
        position = start + size + 1
    return blobs


def load_history(schemas_dir: Path, ref: str = "HEAD") -> History:
    """Released versions of every subject along ``ref``'s history, for the schemas folder ``schemas_dir``."""
    history = History()
    root = repository_root(schemas_dir)
    if root is None:
        history.reason_empty = f"{schemas_dir} is not inside a git work tree"
        return history
    try:
        _git(root, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    except GitError:
        history.reason_empty = f"{ref} has no commit yet"
        return history
    prefix = PurePosixPath(schemas_dir.resolve().relative_to(root.resolve()).as_posix())
    avro_prefix = prefix / "avro"
    catalogue_path = prefix / "catalogue.yaml"
    log_out = _git(
        root,
        [
            "log",
            "--reverse",
            "--topo-order",
            "--format=%H%x09%cI%x09%s",
            ref,
            "--",
            str(avro_prefix),
            str(catalogue_path),
        ],
    ).decode()
    for line in log_out.splitlines():
        sha, date, subject = ([*line.split("\t", 2), "", ""])[:3]
        history.commits.append(Commit(sha=sha, date=date, subject=subject))
    if not history.commits:
        history.reason_empty = f"no commit of {ref} touches {prefix}"
        return history

    trees: list[list[tuple[str, str]]] = []
    for commit in history.commits:
        out = _git(root, ["ls-tree", "-r", "-z", commit.sha, "--", str(avro_prefix), str(catalogue_path)])
        entries = []
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, path = item.decode().split("\t", 1)
            _mode, kind, blob = meta.split()
            if kind == "blob":
                entries.append((path, blob))
        trees.append(entries)
    blobs = _read_blobs(root, [blob for entries in trees for _path, blob in entries])

    expanded_cache: dict[tuple[str, str], str | None] = {}
    for commit, entries in zip(history.commits, trees, strict=True):
        _collect(history, commit, entries, blobs, avro_prefix, str(catalogue_path), expanded_cache)
    return history


def _collect(
    history: History,
    commit: Commit,
    entries: list[tuple[str, str]],
    blobs: dict[str, bytes],
    avro_prefix: PurePosixPath,
    catalogue_path: str,
    cache: dict[tuple[str, str], str | None],
) -> None:
    schemas: dict[str, dict[str, Any]] = {}
    catalogue_blob = None
    for path, blob in entries:
        if path == catalogue_path:
            catalogue_blob = blob
            continue
        if not path.endswith(AVRO_SUFFIX):
            continue
        relative = PurePosixPath(path).relative_to(avro_prefix)
        full_name = ".".join((*relative.parent.parts, relative.name.removesuffix(AVRO_SUFFIX)))
        try:
            parsed = json.loads(blobs[blob])
        except ValueError:
            history.warnings.append(f"commit {commit.short}: {path} is not valid JSON; skipped")
            continue
        if isinstance(parsed, dict):
            schemas[full_name] = parsed
    if catalogue_blob is None:
        history.warnings.append(f"commit {commit.short}: no catalogue; its schemas were not released")
        return
    try:
        catalogue = parse_catalogue(yaml.safe_load(blobs[catalogue_blob]), origin=f"{commit.short}:catalogue")
    except (CatalogueError, yaml.YAMLError) as error:
        history.warnings.append(f"commit {commit.short}: catalogue unreadable ({error}); skipped")
        return
    tree_key = hashlib.sha256(
        "\n".join(f"{path} {blob}" for path, blob in sorted(entries) if path != catalogue_path).encode()
    ).hexdigest()
    source = MappingSource(schemas)
    for spec in catalogue.topics:
        key = (tree_key, spec.value_schema)
        if key not in cache:
            try:
                cache[key] = to_text(expand(spec.value_schema, source))
            except Exception as error:  # any unreadable historical schema: report, do not abort the check
                history.warnings.append(
                    f"commit {commit.short}: {spec.value_schema} does not expand ({error}); not released"
                )
                cache[key] = None
        text = cache[key]
        if text is None:
            continue
        versions = history.versions.setdefault(spec.subject, [])
        if any(version.text == text for version in versions):
            continue
        versions.append(
            ReleasedVersion(
                subject=spec.subject,
                number=len(versions) + 1,
                commit=commit,
                value_schema=spec.value_schema,
                text=text,
            )
        )
