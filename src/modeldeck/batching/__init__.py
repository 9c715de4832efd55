"""The adaptive micro-batcher shared by the server and the batch jobs."""

from ._batcher import MicroBatcher
from ._clock import Clock, ManualClock, MonotonicClock
from ._cost import CostEstimate, CostModel, FlushDecision, decide_flush
from ._types import FLUSH_REASONS, BatcherStats, BatchObserver

__all__ = [
    "FLUSH_REASONS",
    "BatchObserver",
    "BatcherStats",
    "Clock",
    "CostEstimate",
    "CostModel",
    "FlushDecision",
    "ManualClock",
    "MicroBatcher",
    "MonotonicClock",
    "decide_flush",
]
