"""Where a study's trials run, one at a time as slots free up: in this process, a local process pool
(spawned, one BLAS/numba/torch thread per worker) or an existing Dask cluster (``--scheduler``).

A study cannot hand its whole workload over at once as a grid does: the sampler chooses each trial
from the ones finished before it, so :class:`TrialPool` takes one task per free slot and reports
tasks as they finish.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable

from .framework.registry import ExperimentError


class TrialPool:
    """``submit(fn, task)`` → a future; ``wait_first(futures)`` → those finished; ``slots`` tasks at a time."""

    def __init__(self, *, workers: int = 1, scheduler: str | None = None):
        if workers < 1:
            raise ExperimentError(f"--workers must be at least 1, got {workers}")
        self.kind = "dask" if scheduler else "pool" if workers > 1 else "serial"
        self._pool = self._client = None
        self.slots = workers
        if self.kind == "dask":
            import distributed

            try:
                self._client = distributed.Client(scheduler, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise ExperimentError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            self.slots = max(1, sum(self._client.nthreads().values()))
        elif self.kind == "pool":
            import multiprocessing

            from .framework.executor import init_worker

            self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=init_worker)

    def submit(self, fn: Callable, task) -> cf.Future:
        if self.kind == "serial":
            future: cf.Future = cf.Future()
            future.set_result(fn(task))
            return future
        if self.kind == "pool":
            from .framework.executor import _single_thread_env

            with _single_thread_env():  # workers spawn during submit and inherit this environment
                return self._pool.submit(fn, task)
        return self._client.submit(fn, task, pure=False)

    def wait_first(self, futures) -> list:
        """The futures among ``futures`` that have finished (waiting for at least one)."""
        if self.kind == "dask":
            import distributed

            return list(distributed.wait(list(futures), return_when="FIRST_COMPLETED").done)
        return list(cf.wait(list(futures), return_when=cf.FIRST_COMPLETED).done)

    @staticmethod
    def result(future, *, lost: Callable[[str], object]):
        """The future's result, or ``lost(message)`` when its worker died (killed, out of memory, ...)."""
        try:
            return future.result()
        except Exception as exc:
            return lost(" ".join(f"worker lost the task: {type(exc).__name__}: {exc}".split())[:500])

    def run_all(self, fn: Callable, tasks: list, *, lost: Callable[[str], object],
                on_done: Callable[[], None] = lambda: None) -> list:
        """``[fn(task) for task in tasks]``, ``slots`` at a time, in the order of ``tasks``."""
        results: list = [None] * len(tasks)
        queue, running = list(enumerate(tasks)), {}
        while queue or running:
            while queue and len(running) < self.slots:
                index, task = queue.pop(0)
                running[self.submit(fn, task)] = index
            for future in self.wait_first(running):
                results[running.pop(future)] = self.result(future, lost=lost)
                on_done()
        return results

    def close(self, *, abort: bool = False) -> None:
        if self._pool is not None:
            if abort:
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.terminate()  # tasks in flight are lost by design: the study re-queues them
            self._pool.shutdown(wait=not abort, cancel_futures=True)
        if self._client is not None:
            self._client.close()
