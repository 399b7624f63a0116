"""The sink's cached target health: the loop probes only after a failure, readiness probes while up too."""

from __future__ import annotations

from services.common.sinks.runner import TargetHealth


class Probe:
    def __init__(self) -> None:
        self.answers = True
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answers


def test_the_loop_does_not_probe_a_target_that_is_up() -> None:
    probe = Probe()
    health = TargetHealth(probe, interval_s=0.0)
    assert all(health.up for _ in range(5))
    assert probe.calls == 0


def test_readiness_probes_while_up_and_a_failed_probe_pauses_the_loop_until_the_target_answers() -> None:
    probe = Probe()
    health = TargetHealth(probe, interval_s=0.0)
    assert health.ready() and probe.calls == 1
    probe.answers = False
    assert not health.ready()
    assert not health.up  # the loop pauses: nothing was written, the probe found the target down
    probe.answers = True
    assert health.up and health.ready()


def test_probes_are_at_most_one_per_interval() -> None:
    probe = Probe()
    health = TargetHealth(probe, interval_s=3600.0)
    assert health.ready() and health.ready()
    assert probe.calls == 1
    health.mark_down()  # a failed write
    assert not health.up and not health.ready()  # within the interval: not probed again
    assert probe.calls == 1
