"""The cost model's fit and the pure flush decision, on hand-computed numbers."""

from __future__ import annotations

import pytest

from modeldeck.batching import CostEstimate, CostModel, FlushDecision, decide_flush
from modeldeck.errors import ConfigError

pytestmark = pytest.mark.timeout(10)


def decide(queued: int, *, oldest: float = 0.0, since: float = 0.0, estimate: CostEstimate | None) -> FlushDecision:
    return decide_flush(
        queued=queued,
        oldest_wait=oldest,
        since_activity=since,
        max_batch_size=4,
        max_wait_s=0.05,
        estimate=estimate,
    )


EST = CostEstimate(alpha=0.02, beta=0.001, arrival_interval=0.005)


def test_full_batch_flushes_first() -> None:
    assert decide(4, oldest=1.0, estimate=None) == FlushDecision("full")
    assert decide(9, estimate=EST).reason == "full"


def test_max_wait_reached_flushes() -> None:
    assert decide(1, oldest=0.05, estimate=EST) == FlushDecision("max_wait")
    assert decide(1, oldest=0.06, estimate=None).reason == "max_wait"


def test_cold_start_flushes_now() -> None:
    assert decide(1, estimate=None) == FlushDecision("cost")


def test_waits_while_waiting_pays() -> None:
    # 3 waiters * 5 ms per arrival = 15 ms of added latency < 20 ms overhead saved: wait.
    # Budget: alpha / n = 20/3 ms from the last arrival, 1 ms of it gone -> 5.667 ms left.
    decision = decide(3, oldest=0.004, since=0.001, estimate=EST)
    assert decision.reason is None and not decision.flush
    assert decision.wait_s == pytest.approx(0.02 / 3 - 0.001)


def test_flushes_once_waiting_costs_more_than_overhead() -> None:
    # 4 * 5 ms = 20 ms >= 20 ms, with a batch size limit out of the way.
    est = CostEstimate(alpha=0.02, beta=0.0, arrival_interval=0.005)
    decision = decide_flush(
        queued=4, oldest_wait=0.0, since_activity=0.0, max_batch_size=8, max_wait_s=0.05, estimate=est
    )
    assert decision == FlushDecision("cost")


def test_flushes_when_no_arrival_within_budget() -> None:
    # alpha / n = 6.667 ms; 7 ms without an arrival means the wait no longer pays.
    assert decide(3, oldest=0.01, since=0.007, estimate=EST) == FlushDecision("cost")


def test_wait_is_capped_by_max_wait() -> None:
    est = CostEstimate(alpha=1.0, beta=0.0, arrival_interval=0.0001)
    decision = decide(1, oldest=0.048, since=0.0, estimate=est)
    assert decision.reason is None
    assert decision.wait_s == pytest.approx(0.002)


def test_no_overhead_means_no_waiting() -> None:
    est = CostEstimate(alpha=0.0, beta=0.01, arrival_interval=0.0)
    assert decide(1, estimate=est) == FlushDecision("cost")


def test_fit_recovers_alpha_and_beta() -> None:
    model = CostModel()
    for i in range(60):
        b = 1 + (i * 7) % 32
        model.observe_batch(b, 0.02 + 0.003 * b)
    assert model.alpha == pytest.approx(0.02, abs=1e-9)
    assert model.beta == pytest.approx(0.003, abs=1e-9)


def test_fit_adapts_to_a_model_that_changes_speed() -> None:
    model = CostModel(batch_decay=0.9)
    for i in range(50):
        b = 1 + i % 16
        model.observe_batch(b, 0.02 + 0.003 * b)
    for i in range(150):
        b = 1 + i % 16
        model.observe_batch(b, 0.05 + 0.001 * b)
    assert model.alpha == pytest.approx(0.05, rel=1e-3)
    assert model.beta == pytest.approx(0.001, rel=1e-3)


def test_fit_with_one_batch_size() -> None:
    model = CostModel()
    model.observe_batch(8, 0.1)
    # One size says nothing about the slope: all of the time is taken as overhead.
    assert (model.alpha, model.beta) == (pytest.approx(0.1), 0.0)
    model.observe_batch(2, 0.03)
    model.observe_batch(4, 0.05)
    assert model.beta is not None and model.beta > 0
    for _ in range(300):
        model.observe_batch(16, 0.5)
    # Only size 16 is left in the window: whatever the split, the fit predicts it.
    assert model.alpha is not None and model.alpha >= 0 and model.beta >= 0
    assert model.alpha + model.beta * 16 == pytest.approx(0.5, rel=1e-3)


def test_fit_never_goes_negative() -> None:
    model = CostModel()
    model.observe_batch(1, 0.5)
    model.observe_batch(10, 0.1)
    # Negative slope clamps to 0; alpha is the weighted mean time (the older batch decayed by 0.95).
    assert model.beta == 0.0 and model.alpha == pytest.approx((0.5 * 0.95 + 0.1) / 1.95)
    other = CostModel()
    other.observe_batch(1, 0.001)
    other.observe_batch(10, 0.1)
    assert other.alpha == 0.0 and other.beta is not None and other.beta > 0


def test_arrival_interval_is_an_ewma() -> None:
    model = CostModel(arrival_weight=0.5)
    model.observe_arrival(0.0)
    assert model.arrival_interval is None
    model.observe_arrival(0.1)
    assert model.arrival_interval == pytest.approx(0.1)
    model.observe_arrival(0.4)
    assert model.arrival_interval == pytest.approx(0.2)  # 0.5 * 0.1 + 0.5 * 0.3


def test_estimate_needs_a_batch_and_an_arrival_gap() -> None:
    model = CostModel()
    model.observe_arrival(0.0)
    model.observe_arrival(0.01)
    assert model.estimate() is None
    model.observe_batch(1, 0.004)
    assert model.estimate() == CostEstimate(alpha=0.004, beta=0.0, arrival_interval=0.01)
    assert model.estimate().batch_seconds(3) == pytest.approx(0.004)  # type: ignore[union-attr]


@pytest.mark.parametrize("kwargs", [{"batch_decay": 0.0}, {"batch_decay": 1.5}, {"arrival_weight": 0.0}])
def test_model_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=r"^\[MD010\] (batch_decay|arrival_weight) must be in \(0, 1\]"):
        CostModel(**kwargs)
