"""Wall-clock timing of a job's stages, reported as `timings_s`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Collects the wall time of named stages; a stage run twice adds up."""

    def __init__(self) -> None:
        self.timings_s: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block run inside this context as stage `name` (wall seconds, perf_counter).

        Parameters
        ----------
        name : str
            The stage's name in report(); running a stage again adds to its time (also when
            the block raises).
        """
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_s[name] = self.timings_s.get(name, 0.0) + time.perf_counter() - start

    def report(self) -> dict[str, float]:
        """Each stage's wall time and "total", the time since the timer was made.

        Returns
        -------
        timings_s : dict of str to float
            Seconds, rounded to 0.1 ms; stages in the order they first ran, then "total".
        """
        out = {name: round(seconds, 4) for name, seconds in self.timings_s.items()}
        out["total"] = round(time.perf_counter() - self._started, 4)
        return out
