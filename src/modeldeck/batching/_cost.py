"""The batcher's cost model (batch time and arrival rate) and the pure flush decision."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["CostEstimate", "CostModel", "FlushDecision", "decide_flush"]

# Float slack so a timer that fires exactly at a limit counts as having reached it.
_EPS = 1e-9


@dataclass(frozen=True)
class CostEstimate:
    """What the model believes now: batch time ``alpha + beta * b`` and the mean arrival interval."""

    alpha: float
    beta: float
    arrival_interval: float

    def batch_seconds(self, size: int) -> float:
        return self.alpha + self.beta * size


class CostModel:
    """Fits batch time ``t(b) = alpha + beta * b`` and the request arrival rate, forgetting old data.

    The fit is exponentially weighted least squares: every new batch multiplies the weight of the
    older ones by ``batch_decay``, so the coefficients follow a model whose speed changes. The
    arrival interval is an EWMA with weight ``arrival_weight`` on the newest interval.
    """

    def __init__(self, *, batch_decay: float = 0.95, arrival_weight: float = 0.2) -> None:
        if not 0.0 < batch_decay <= 1.0:
            raise ConfigError(f"batch_decay must be in (0, 1], got {batch_decay!r}")
        if not 0.0 < arrival_weight <= 1.0:
            raise ConfigError(f"arrival_weight must be in (0, 1], got {arrival_weight!r}")
        self._decay = batch_decay
        self._weight = arrival_weight
        # Decayed sums of 1, b, b*b, t, b*t over the observed batches.
        self._s0 = self._sb = self._sbb = self._st = self._sbt = 0.0
        self._alpha: float | None = None
        self._beta: float | None = None
        self._last_arrival: float | None = None
        self._interval: float | None = None

    def observe_batch(self, size: int, seconds: float) -> None:
        d = self._decay
        b, t = float(size), max(float(seconds), 0.0)
        self._s0 = self._s0 * d + 1.0
        self._sb = self._sb * d + b
        self._sbb = self._sbb * d + b * b
        self._st = self._st * d + t
        self._sbt = self._sbt * d + b * t
        self._solve()

    def observe_arrival(self, now: float) -> None:
        if self._last_arrival is not None:
            gap = max(now - self._last_arrival, 0.0)
            self._interval = gap if self._interval is None else (1 - self._weight) * self._interval + self._weight * gap
        self._last_arrival = now

    @property
    def alpha(self) -> float | None:
        return self._alpha

    @property
    def beta(self) -> float | None:
        return self._beta

    @property
    def arrival_interval(self) -> float | None:
        return self._interval

    def estimate(self) -> CostEstimate | None:
        """The current estimate, or None until at least one batch and one arrival gap were seen."""
        if self._alpha is None or self._beta is None or self._interval is None:
            return None
        return CostEstimate(self._alpha, self._beta, self._interval)

    def _solve(self) -> None:
        mean_b = self._sb / self._s0
        mean_t = self._st / self._s0
        var_b = self._sbb / self._s0 - mean_b * mean_b
        # Batch sizes are integers: a spread below 0.1 item means one size holds nearly all the weight.
        if var_b > 0.01:
            beta = (self._sbt / self._s0 - mean_b * mean_t) / var_b
        else:
            # One batch size only says nothing about the slope: keep the last slope we learned.
            beta = self._beta if self._beta is not None else 0.0
        beta = max(beta, 0.0)
        alpha = mean_t - beta * mean_b
        if alpha < 0.0:
            alpha = 0.0
            beta = self._sbt / self._sbb if self._sbb > 0 else 0.0
        self._alpha, self._beta = alpha, beta


@dataclass(frozen=True)
class FlushDecision:
    """Either flush now for ``reason``, or wait up to ``wait_s`` for the next arrival and decide again."""

    reason: str | None
    wait_s: float | None = None

    @property
    def flush(self) -> bool:
        return self.reason is not None


def decide_flush(
    *,
    queued: int,
    oldest_wait: float,
    since_activity: float,
    max_batch_size: int,
    max_wait_s: float,
    estimate: CostEstimate | None,
) -> FlushDecision:
    """Whether an idle worker with ``queued`` items should start a batch now.

    ``oldest_wait`` is how long the oldest item has waited; ``since_activity`` is the time since
    the last arrival or since the worker became idle, whichever is later. Waiting for one more
    item costs about ``queued * arrival_interval`` of latency summed over the waiters and saves
    about ``alpha`` (one batch overhead), so flush once that cost reaches ``alpha``; and if no
    item arrives within ``alpha / queued`` the wait has stopped paying, so flush then too.
    """
    if queued >= max_batch_size:
        return FlushDecision("full")
    max_wait_left = max_wait_s - oldest_wait
    if max_wait_left <= _EPS:
        return FlushDecision("max_wait")
    if estimate is None:
        # Cold start: without measurements, waiting is a guess; answer now and learn.
        return FlushDecision("cost")
    if queued * estimate.arrival_interval >= estimate.alpha - _EPS:
        return FlushDecision("cost")
    budget_left = estimate.alpha / queued - since_activity
    if budget_left <= _EPS:
        return FlushDecision("cost")
    return FlushDecision(None, min(budget_left, max_wait_left))
