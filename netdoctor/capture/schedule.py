"""When to take full per-layer statistics: every step at first, then sparser.

Early steps are where initialisation problems show and where curves move fastest; later, one
sample every few dozen steps is enough to follow trends at a cost near zero. The loss, the total
gradient norm and the non-finite checks are taken on every step regardless.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SamplingSchedule:
    """Full statistics on every step below ``dense``; after that the interval doubles each time
    the step count doubles (2 from ``dense``, 4 from ``2*dense``, ...) up to ``max_interval``."""

    dense: int = 32
    max_interval: int = 50

    def __post_init__(self) -> None:
        if self.dense < 0 or self.max_interval < 1:
            raise ValueError(
                f"SamplingSchedule needs dense >= 0 and max_interval >= 1, got {self}")

    @classmethod
    def every(cls, interval: int) -> SamplingSchedule:
        """A fixed interval: ``every(1)`` samples every step (what benchmarks compare against)."""
        return cls(dense=0, max_interval=interval)

    def interval_at(self, step: int) -> int:
        if step < self.dense:
            return 1
        if self.dense == 0:
            return self.max_interval
        interval = 2
        while step >= self.dense * interval and interval < self.max_interval:
            interval *= 2
        return min(interval, self.max_interval)

    def is_sampled(self, step: int) -> bool:
        return step % self.interval_at(step) == 0
