"""Where the local stack keeps its state, and the secrets it generates for itself."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.local.settings import StackSettings
from deploy.local.tls import PrivateCA

REPO_ROOT = Path(__file__).resolve().parents[2]

# Unprivileged user that runs PostgreSQL (initdb and postgres refuse to run as root).
POSTGRES_OS_USER = "postgres"


class MissingSecret(ValueError):
    """A credential a tool reads from the secrets folder is not there."""


@dataclass(frozen=True)
class StackPaths:
    home: Path

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def config(self) -> Path:
        return self.home / "config"

    @property
    def jars(self) -> Path:
        return self.home / "jars"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def env_file(self) -> Path:
        return self.home / "stack.env"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def stored_secret(self, name: str) -> str:
        """A secret the stack generated (``StackContext.secret``), read only: never made up here. Raises
        ``MissingSecret`` naming the file when it is not there (a stack started without what makes it)."""
        path = self.secrets / name
        try:
            value = path.read_text().strip()
        except OSError as error:
            raise MissingSecret(f"no readable secret {path} ({error.strerror})") from None
        if not value:
            raise MissingSecret(f"the secret {path} is empty")
        return value

    def ensure(self) -> None:
        for path in (self.logs, self.run, self.data, self.config, self.jars, self.secrets):
            path.mkdir(parents=True, exist_ok=True)
        self.secrets.chmod(0o700)


@dataclass
class StackContext:
    """Everything a component needs to prepare, start and probe itself."""

    settings: StackSettings
    paths: StackPaths

    @classmethod
    def create(cls, settings: StackSettings) -> StackContext:
        home = Path(settings.home)
        if not home.is_absolute():
            home = REPO_ROOT / home
        return cls(settings=settings, paths=StackPaths(home.resolve()))

    @property
    def tls(self) -> PrivateCA:
        """The stack's private certificate authority (its files in the secrets folder)."""
        return PrivateCA(self.paths.secrets / "tls")

    @property
    def http_scheme(self) -> str:
        """The scheme of the stack's HTTP servers: https on a secure stack (certificates of its CA), else http."""
        return "https" if self.settings.secure else "http"

    def https_verify(self) -> ssl.SSLContext | bool:
        """What the stack's own HTTP clients check a server's certificate against: the stack's CA on a secure stack
        (and nothing else), the system's otherwise."""
        return ssl.create_default_context(cafile=self.tls.ensure()) if self.settings.secure else True

    def secret(self, name: str, configured: str | None = None) -> str:
        """A configured secret, else one generated once and kept in the state directory (mode 0600)."""
        if configured:
            return configured
        path = self.paths.secrets / name
        if path.exists():
            return path.read_text().strip()
        self.paths.ensure()
        value = secrets.token_urlsafe(24)
        path.write_text(value)
        path.chmod(0o600)
        return value

    def private_dir(self, name: str, owner: str) -> Path:
        """A data directory owned by ``owner``, under the state directory when ``owner`` can reach it.

        PostgreSQL runs as an unprivileged user; when the checkout lives below a directory that user cannot
        traverse (for example /root), its data lives under /var/tmp instead and a link in the state
        directory points at it.
        """
        preferred = self.paths.data / name
        if os.geteuid() != 0 or _can_traverse(owner, self.paths.data):
            target = preferred
        else:
            digest = hashlib.sha256(str(self.paths.home).encode()).hexdigest()[:12]
            target = Path("/var/tmp") / f"freightline-{digest}" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.parent.chmod(0o755)
            if not preferred.is_symlink():
                if preferred.exists():
                    shutil.rmtree(preferred)
                preferred.symlink_to(target)
        target.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(target, user=owner, group=owner)
        target.chmod(0o700)
        return target


def _can_traverse(user: str, path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)], capture_output=True, check=False)
    return result.returncode == 0


def wipe(paths: StackPaths) -> None:
    """Remove all stack data (``--fresh``); jars and generated secrets stay."""
    data = paths.data
    if data.exists():
        for child in data.iterdir():
            if child.is_symlink():
                shutil.rmtree(child.resolve(), ignore_errors=True)
                child.unlink()
            elif child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    for path in (paths.config, paths.logs):
        shutil.rmtree(path, ignore_errors=True)
    paths.env_file.unlink(missing_ok=True)
