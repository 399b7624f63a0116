"""Toxiproxy, the TCP fault injector of the chaos harness (``freightline chaos``): built by ``setup`` from its Go
module into the state directory, started by the harness on a port of its own (it is no component of the shared
stack: each chaos run starts and stops its own server)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from deploy.local.builds import go_version, is_current, run_step
from deploy.local.context import StackContext

TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
TOXIPROXY_VERSION = "v2.5.0"


def toxiproxy_binary(ctx: StackContext) -> Path:
    return ctx.paths.home / "bin" / "toxiproxy" / "server"


def build_toxiproxy(ctx: StackContext, progress: Callable[[str], None]) -> Path:
    """``go install`` of the pinned ``toxiproxy-server`` (its ``cmd/server`` package); idempotent."""
    binary = toxiproxy_binary(ctx)
    stamp = binary.with_name(".stamp")
    built_from = f"{TOXIPROXY_VERSION} {go_version()}"
    if binary.exists() and is_current(stamp, built_from):
        return binary
    progress(f"building toxiproxy-server {TOXIPROXY_VERSION} with go install")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(binary.parent), "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    run_step(["go", "install", f"{TOXIPROXY_MODULE}/cmd/server@{TOXIPROXY_VERSION}"], "building toxiproxy", env=env)
    stamp.write_text(built_from)
    return binary
