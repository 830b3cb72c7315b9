"""Running grid points: serially, in a local spawn process pool, or on a Dask cluster.

:func:`run_point` runs one point and never raises (a failure is a row); :class:`Executor` submits
points and yields ``(key, result)`` as they finish. Workers run one BLAS/OpenMP/numba/torch thread
each (set before numpy loads in them), so two workers on two cores do not oversubscribe.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
import traceback

from .registry import ExperimentError

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
RESERVED = ("run_id", "status", "wall_s", "error")


def init_worker() -> None:
    """Process-pool initializer: one BLAS/OpenMP/numba thread per worker (set before imports)."""
    import signal

    for var in THREAD_ENV:
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit_torch_threads()


@contextlib.contextmanager
def _single_thread_env():
    """Set the thread-count variables to 1 in this process's environment for a moment.

    Spawned workers import numpy (through ``pchw``) while unpickling :func:`init_worker`, before
    it runs, so OpenBLAS must already see ``OPENBLAS_NUM_THREADS=1`` in the inherited environment.
    """
    saved = {var: os.environ.get(var) for var in THREAD_ENV}
    os.environ.update({var: "1" for var in THREAD_ENV})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _limit_torch_threads() -> None:
    """torch.set_num_threads(1) if torch is loaded (importing it just for this costs seconds)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _failure(exc: BaseException, wall_s: float | None, tb: str | None) -> dict:
    message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    return {"metrics": {}, "status": "failed", "wall_s": wall_s, "error": message, "traceback": tb}


def run_point(module_name: str, config_dict: dict, *, single_thread: bool = True) -> dict:
    """Run one grid point: ``{"metrics", "status", "wall_s", "error", "traceback"}``; never raises.

    Top-level and taking plain values so it pickles for process pools and Dask.
    """
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        config = module.Config(**config_dict)
        if single_thread:
            _limit_torch_threads()
        t0 = time.perf_counter()
        metrics = module.run(config)
        wall = time.perf_counter() - t0
        if not isinstance(metrics, dict):
            raise TypeError(f"run() returned {type(metrics).__name__}, expected a dict of metrics")
        reserved = sorted(k for k in metrics if k in RESERVED or str(k).startswith("p_"))
        if reserved:
            raise ValueError(f"run() returned reserved column names {reserved}")
        return {"metrics": metrics, "status": "ok", "wall_s": wall, "error": None, "traceback": None}
    except Exception as exc:
        return _failure(exc, time.perf_counter() - t0, traceback.format_exc())


class Executor:
    """Serial, local process pool or Dask: submit points, yield (key, result) as they finish."""

    def __init__(self, workers: int, scheduler: str | None, n_todo: int):
        self.kind = "dask" if scheduler else ("pool" if workers > 1 and n_todo > 1 else "serial")
        self.pool = self.client = None
        self._futures: list = []
        if self.kind == "dask":
            try:
                import distributed
            except ImportError:
                raise ExperimentError("--scheduler needs Dask: pip install 'distributed>=2024.1'") from None
            try:
                self.client = distributed.Client(scheduler, timeout=30)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ExperimentError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        elif self.kind == "pool":
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=min(workers, n_todo),
                                            mp_context=multiprocessing.get_context("spawn"),
                                            initializer=init_worker)

    def results(self, module_name: str, todo: list[tuple[str, dict]]):
        """Yield ``(key, result)`` for every ``(key, config_dict)`` of ``todo`` as it finishes."""
        if self.kind == "serial":
            for key, config_dict in todo:
                yield key, run_point(module_name, config_dict, single_thread=False)
        elif self.kind == "pool":
            yield from self._pool_results(module_name, todo)
        else:
            yield from self._dask_results(module_name, todo)

    def _pool_results(self, module_name: str, todo: list[tuple[str, dict]]):
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        with _single_thread_env():  # workers spawn during submit and inherit this environment
            futures = {self.pool.submit(run_point, module_name, c): k for k, c in todo}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                result = _failure(RuntimeError(f"worker process died ({exc})"), None, None)
            yield futures[future], result

    def _dask_results(self, module_name: str, todo: list[tuple[str, dict]]):
        import distributed

        futures = {self.client.submit(run_point, module_name, c, pure=False): k for k, c in todo}
        self._futures = list(futures)
        for future in distributed.as_completed(list(futures)):
            try:
                result = future.result()
            except Exception as exc:  # a worker lost the task (killed, out of memory, ...)
                result = _failure(exc, None, None)
            yield futures[future], result

    def close(self, *, abort: bool = False) -> None:
        """Shut the pool or client down; ``abort`` stops points in flight instead of waiting for them."""
        if self.pool is not None:
            if abort:
                for proc in list(getattr(self.pool, "_processes", {}).values()):
                    proc.terminate()  # points in flight are lost by design; don't wait for them
            self.pool.shutdown(wait=not abort, cancel_futures=True)
        if self.client is not None:
            if abort and self._futures:
                self.client.cancel(self._futures)
            self.client.close()
