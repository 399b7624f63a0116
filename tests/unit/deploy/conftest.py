"""The deployment files, parsed once: the compose file and both Kubernetes overlays rendered by kustomize (built at
setup by ``python -m deploy.manifests.tools``)."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.manifests import consistency, tools
from schemas.catalogue import Catalogue, load_catalogue


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return consistency.load_compose()


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Overlay name -> its rendered resources."""
    assert tools.kustomize_path().exists(), "kustomize is missing: run `make setup` (python -m deploy.manifests.tools)"
    return {overlay: consistency.load_documents(tools.render(overlay)) for overlay in tools.OVERLAYS}


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()
