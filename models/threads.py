"""The intra-op thread count, following the cores that other processes leave free.

Why: torch's CPU kernels are OpenMP fork–join regions, and each region ends when its slowest
thread does. When another process takes one of the cores, one of our threads shares that core,
and every one of the thousands of regions in a training iteration waits for a scheduler slice
(milliseconds) instead of microseconds. Measured on this project's 2-core machine, depth-30
μPC step beside one busy-loop process: 2 threads 1039 ms median, 1 thread 287 ms (idle, 2
threads: 43 ms); libgomp's passive wait policy only softens it (376 ms).

:class:`ThreadGovernor` reads how much CPU time other processes used over the last interval
(``/proc/stat`` minus this process's own CPU time) and sets ``torch.set_num_threads`` to the
cores left free, never above the count torch started with (which honours ``OMP_NUM_THREADS``).
Where ``/proc/stat`` cannot be read it keeps the starting count. The training step's kernels
give the same bits for any thread count (tests/test_threads.py), so switching never changes a
result.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

PROC_STAT = Path("/proc/stat")
# A core counts as free once others use less than 1 − FREE_MARGIN of it: one busy competitor
# beside our 2 threads gets ~2/3 of a core (fair share of 3 runnable threads on 2 cores), which
# must read as "taken"; daemons (a few % of a core) must not. Niced processes count like any
# other: they fill a core we leave free, and even the slices they get beside our threads stall
# fork–join regions (measured here beside three niced jobs: depth-30 step 960–1760 ms with 2
# threads fixed, 156–164 ms under this governor).
FREE_MARGIN = 0.4


def busy_seconds(cpus: frozenset[int], *, stat_path: Path = PROC_STAT) -> float | None:
    """CPU-seconds spent busy (not idle or iowait) by ``cpus`` since boot, or None if unknown.

    ``/proc/stat`` lines ``cpuN user nice system idle iowait irq softirq steal ...`` in clock
    ticks; steal counts as busy (the hypervisor gave the core to someone else).
    """
    try:
        text = stat_path.read_text()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = 0
    seen = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            index = int(name[3:])
            values = [int(v) for v in rest.split()[:8]]
        except ValueError:
            continue
        if index in cpus and len(values) == 8:
            user, nice, system, idle, iowait, irq, softirq, steal = values
            busy += user + nice + system + irq + softirq + steal
            seen += 1
    return busy / ticks if seen == len(cpus) else None


def usable_cpus() -> frozenset[int]:
    """The CPUs this process may run on."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return frozenset(range(os.cpu_count() or 1))


def threads_for(*, n_cpus: int, others_cores: float, max_threads: int) -> int:
    """Threads to use when other processes keep ``others_cores`` cores busy (1 ≤ result ≤ max)."""
    free = n_cpus - others_cores
    return max(1, min(max_threads, math.floor(free + FREE_MARGIN)))


class ThreadGovernor:
    """Sets torch's intra-op thread count to the free cores; a context manager restoring it.

    Call :meth:`update` between iterations: at most every ``interval_s`` (the first time after
    ``first_interval_s``, so that a loaded start is short) it measures the other
    processes' CPU use since the last measurement and sets the thread count. Cost: one read of
    ``/proc/stat`` per interval.
    """

    def __init__(self, *, interval_s: float = 0.5, first_interval_s: float = 0.1, max_threads: int | None = None,
                 busy: Callable[[], float | None] | None = None, clock: Callable[[], float] = time.monotonic,
                 own_cpu: Callable[[], float] = time.process_time, set_threads: Callable[[int], None] | None = None):
        cpus = usable_cpus()
        self.n_cpus = len(cpus)
        self.max_threads = max_threads if max_threads is not None else torch.get_num_threads()
        self.interval_s, self.first_interval_s = interval_s, first_interval_s
        self._interval = first_interval_s
        self._busy = busy if busy is not None else (lambda: busy_seconds(cpus))
        self._clock, self._own_cpu = clock, own_cpu
        self._set = set_threads if set_threads is not None else torch.set_num_threads
        self._initial = torch.get_num_threads()
        self.threads = self.max_threads
        self.switches = 0
        self._last: tuple[float, float, float] | None = None

    def __enter__(self) -> ThreadGovernor:
        self._set(self.threads)
        self._last = self._sample()
        self._interval = self.first_interval_s
        return self

    def __exit__(self, *exc) -> None:
        self._set(self._initial)

    def _sample(self) -> tuple[float, float, float] | None:
        busy = self._busy()
        return None if busy is None else (self._clock(), busy, self._own_cpu())

    def update(self) -> int:
        """Re-measure if ``interval_s`` has passed; returns the thread count in force."""
        if self._last is None or self._clock() - self._last[0] < self._interval:
            return self.threads
        now = self._sample()
        if now is None:
            return self.threads
        wall = now[0] - self._last[0]
        others = max(0.0, ((now[1] - self._last[1]) - (now[2] - self._last[2])) / wall)
        self._last, self._interval = now, self.interval_s
        target = threads_for(n_cpus=self.n_cpus, others_cores=others, max_threads=self.max_threads)
        if target != self.threads:
            self._set(target)
            self.threads = target
            self.switches += 1
        return self.threads
