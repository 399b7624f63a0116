"""Every window job by its module's name, and several of them run as one Flink job.

``flink run -py stream_processors/window_jobs.py product_views store_order_revenue ...`` (what
``freightline flink submit`` does when given several jobs) builds each named job with its own settings (its
``<PREFIX>*`` variables: topics, consumer group, table) and submits them together, as one Flink job named after all
of them (``flink_sql.pipeline_name``): one client and one plan instead of one per job, one task slot at parallelism
1. Each job keeps its own outputs, offsets and transactional ids, so its figures are those of a job of its own; the
job-wide settings (checkpoint interval, idle-source timeout, parallelism) must be the same for all of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import cast

from stream_processors import (
    category_top_products,
    product_views,
    route_shipment_delays,
    service_error_rate,
    store_order_revenue,
)
from stream_processors.flink_sql import WindowJob, WindowJobSettings, submit_jobs

JOBS: dict[str, tuple[WindowJob, type[WindowJobSettings]]] = {
    "product_views": (product_views.JOB, product_views.ProductViewsJobSettings),
    "store_order_revenue": (store_order_revenue.JOB, store_order_revenue.StoreOrderRevenueJobSettings),
    "route_shipment_delays": (route_shipment_delays.JOB, route_shipment_delays.RouteShipmentDelaysJobSettings),
    "service_error_rate": (service_error_rate.JOB, service_error_rate.ServiceErrorRateJobSettings),
    "category_top_products": (category_top_products.JOB, category_top_products.CategoryTopProductsJobSettings),
}


def main(argv: Sequence[str] | None = None) -> None:
    names = list(sys.argv[1:] if argv is None else argv)
    unknown = [name for name in names if name not in JOBS]
    if unknown or not names:
        raise SystemExit(f"window jobs to run: one or more of {sorted(JOBS)}, not {names}")
    submit_jobs([(JOBS[name][0], from_environment(JOBS[name][1])) for name in names])


def from_environment(settings: type[WindowJobSettings]) -> WindowJobSettings:
    """A job's settings read from the environment (each job's class defaults what the base class requires)."""
    return cast(Callable[[], WindowJobSettings], settings)()


if __name__ == "__main__":
    main()
