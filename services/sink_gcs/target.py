"""The GCS sink's target: the shared exactly-once file protocol over GCS objects."""

from __future__ import annotations

from collections.abc import Callable

from services.common.endpoints import Endpoint, http_endpoint
from services.common.settings import GcsSettings
from services.common.sinks.files import FileSinkTarget
from services.common.sinks.runner import SinkContext
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_gcs.store import GcsStore, gcs_client


def store_for(settings: GcsSinkSettings, gcs: GcsSettings) -> GcsStore:
    return GcsStore(gcs_client(gcs), settings.bucket)


class GcsTarget(FileSinkTarget):
    def __init__(self, store: GcsStore, ctx: SinkContext, settings: GcsSinkSettings) -> None:
        super().__init__(
            store,
            ctx,
            root=settings.prefix,
            codec=settings.codec,
            max_file_records=settings.max_file_records,
            max_file_bytes=settings.max_file_bytes,
        )
        self.gcs_store = store
        self.create_bucket = settings.create_bucket

    def open(self) -> None:
        if self.create_bucket:
            self.gcs_store.ensure_bucket()
        super().open()


# Where the client goes when GCS_ENDPOINT is unset.
PUBLIC_GCS = "https://storage.googleapis.com"


def gcs_endpoint(gcs: GcsSettings) -> Endpoint:
    """The GCS JSON API (the emulator when ``GCS_ENDPOINT`` is set): reachable once it answers."""
    return http_endpoint(
        "GCS_ENDPOINT",
        gcs.endpoint or PUBLIC_GCS,
        "/storage/v1/b?project=" + gcs.project,
        ca_location=gcs.ssl_ca_location,
    )


def target_factory(settings: GcsSinkSettings, gcs: GcsSettings) -> Callable[[SinkContext], FileSinkTarget]:
    def make(ctx: SinkContext) -> FileSinkTarget:
        return GcsTarget(store_for(settings, gcs), ctx, settings)

    return make
