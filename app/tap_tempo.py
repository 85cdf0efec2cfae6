"""Tap tempo: the average interval of the last taps, started afresh after a pause.

``TapTempo.tap(t)`` takes a tap's time (seconds on a monotonic clock) and returns the tempo
so far (None until the second tap). A tap more than ``reset_after_s`` after the one before
starts a new count; only the last ``window`` intervals are averaged, so a producer can
drift to a new tempo by tapping on. Pure logic, one owner thread.
"""

from __future__ import annotations

from collections import deque

RESET_AFTER_S = 2.0
WINDOW = 8
MIN_BPM, MAX_BPM = 40.0, 300.0


class TapTempo:
    """See the module docstring."""

    def __init__(self, reset_after_s: float = RESET_AFTER_S, window: int = WINDOW):
        self.reset_after_s = reset_after_s
        self._intervals: deque[float] = deque(maxlen=window)
        self._last: float | None = None

    def tap(self, t: float) -> float | None:
        """Record a tap at time ``t`` (seconds); the tempo in BPM, or None after the first tap."""
        if self._last is not None and 0.0 < t - self._last <= self.reset_after_s:
            self._intervals.append(t - self._last)
        elif self._last is None or t - self._last > self.reset_after_s:
            self._intervals.clear()
        self._last = t
        return self.bpm

    @property
    def taps(self) -> int:
        """Taps counted in the current run (0 before the first)."""
        return 0 if self._last is None else len(self._intervals) + 1

    @property
    def bpm(self) -> float | None:
        if not self._intervals:
            return None
        bpm = 60.0 * len(self._intervals) / sum(self._intervals)
        return round(min(MAX_BPM, max(MIN_BPM, bpm)), 1)

    def reset(self) -> None:
        self._intervals.clear()
        self._last = None
