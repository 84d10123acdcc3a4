"""Run independent tasks in parallel and hand back each result as soon as it is done.

    for result in run_tasks(fn, tasks, shared=(X, y), n_jobs=2):                    # joblib worker processes
        ...
    for result in run_tasks(fn, tasks, shared=(X, y), backend="dask", scheduler="tcp://HOST:8786"):
        ...

Each task runs as ``fn(task, *shared)``; results come back in completion order (callers that need them in
order sort them). ``shared`` arrays travel once, not once per task: joblib memory-maps large arrays into its
workers, Dask scatters them to every worker.

Local (``backend="local"``): ``n_jobs=1`` runs the tasks one after another in this process, with all BLAS
threads; ``n_jobs=N`` uses N joblib (loky) worker processes and limits each one's BLAS / OpenMP thread pools to
``cpu_count // N`` threads (at least 1), through the environment variables joblib sets in its workers and
``threadpoolctl`` around every task, so 2 workers on 2 cores run 2 threads, not 4. ``n_jobs=-1`` means one
worker per core.

A worker process that dies (killed, out of memory) breaks joblib's pool: the tasks running then (its own and the
other workers') are lost, the queued ones are not (each task touches a marker file when it starts, so which ones
had started is known). Which one killed the worker is not, so each lost task runs again alone; a task whose worker
dies while it runs alone is retried up to ``retries`` more times (default 1), then becomes
``on_error(task, WorkerLostError(...))`` (without ``on_error`` the error is raised). Then the queued tasks run in
parallel as before.

Dask (``backend="dask"``): tasks go to an existing ``dask.distributed`` cluster, started with the standard
processes (see docs/tune.md):

    dask scheduler                          # prints the address, tcp://HOST:8786
    dask worker tcp://HOST:8786 --nworkers 2 --nthreads 1     # on each machine

Dask workers already pin BLAS to one thread per worker process (its nanny sets OMP_NUM_THREADS=1 and friends).
An address that does not answer raises ``SchedulerUnreachableError`` after ``connect_timeout`` seconds instead
of waiting forever. Needs ``pip install 'chainrule[dist]'`` (dask and distributed).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

__all__ = ["run_tasks", "resolve_n_jobs", "blas_threads_per_worker", "SchedulerUnreachableError",
           "WorkerLostError", "BACKENDS", "connect"]

logger = logging.getLogger("chainrule.tune")

BACKENDS = ("local", "dask")
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s:/]+(:\d+)?$|^[^\s:/]+:\d+$")


class SchedulerUnreachableError(ConnectionError):
    """No Dask scheduler answered at the given address within the timeout."""


class WorkerLostError(RuntimeError):
    """The worker process running a task died (killed, out of memory) as often as the task may be retried."""


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: int | None, n_tasks: int | None = None) -> int:
    """-1 (or None) -> one per core; a positive int as is; capped at the number of tasks."""
    if n_jobs is None or n_jobs == -1:
        n = cpu_count()
    elif isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int or -1 (one worker per core), got {n_jobs!r}")
    else:
        n = n_jobs
    return max(1, min(n, n_tasks)) if n_tasks else n


def blas_threads_per_worker(n_jobs: int) -> int:
    """BLAS threads each of ``n_jobs`` local workers may use so that together they fill the cores once."""
    return max(1, cpu_count() // max(1, n_jobs))


def _limited(fn: Callable[..., Any], threads: int | None, task: Any, *shared: Any) -> Any:
    """Run fn(task, *shared) with BLAS/OpenMP pools capped at ``threads`` (None: unchanged)."""
    if threads is None:
        return fn(task, *shared)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return fn(task, *shared)


def run_tasks(fn: Callable[..., Any], tasks: Sequence[Any], *, shared: Sequence[Any] = (),
              n_jobs: int | None = 1, backend: str = "local", scheduler: Any = None,
              connect_timeout: float = 5.0, retries: int = 1,
              on_error: Callable[[Any, BaseException], Any] | None = None) -> Iterator[Any]:
    """Yield ``fn(task, *shared)`` for every task, in completion order (see the module docstring).

    ``on_error(task, exc)`` turns a task lost to the machinery (a worker that died, after ``retries`` more tries
    for local workers) into a result; without it the exception propagates. Exceptions raised by ``fn`` itself
    propagate the same way.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    tasks = list(tasks)
    if backend == "dask":
        if scheduler is None:
            raise ValueError("backend='dask' needs scheduler='tcp://HOST:8786' (the address `dask scheduler` "
                             "prints) or a dask.distributed Client")
        yield from _run_dask(fn, tasks, shared, scheduler, connect_timeout, on_error)
        return
    if scheduler is not None:
        raise ValueError("scheduler= is only used with backend='dask'")
    if not tasks:
        return
    n = resolve_n_jobs(n_jobs, len(tasks))
    if n == 1:
        for task in tasks:
            yield fn(task, *shared)
        return
    yield from _run_joblib(fn, tasks, shared, n, retries, on_error)


def _started(marks: str, index: int, fn: Callable[..., Any], threads: int | None, task: Any,
             *shared: Any) -> tuple[int, Any]:
    """(index, fn(task, *shared)) in a worker, after leaving a marker that says the task started."""
    Path(marks, str(index)).touch()
    return index, _limited(fn, threads, task, *shared)


def _run_joblib(fn: Callable[..., Any], tasks: list[Any], shared: Sequence[Any], n_jobs: int, retries: int,
                on_error: Callable[[Any, BaseException], Any] | None) -> Iterator[Any]:
    try:
        from joblib import Parallel, delayed, parallel_config
        from joblib.externals.loky.process_executor import TerminatedWorkerError
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("n_jobs > 1 runs trials in joblib worker processes: pip install joblib threadpoolctl "
                          "(or n_jobs=1)") from e
    threads = blas_threads_per_worker(n_jobs)
    pending = dict(enumerate(tasks))
    losses = dict.fromkeys(pending, 0)
    suspects: list[int] = []  # lost with a worker: each runs again alone (so a second loss is its own)
    with tempfile.TemporaryDirectory(prefix="chainrule-tasks-") as marks:
        while pending:
            batch = [suspects.pop(0)] if suspects else list(pending)
            try:
                # (n_jobs stays > 1 even for one task: joblib would run n_jobs=1 in this process)
                with parallel_config(backend="loky", inner_max_num_threads=threads):
                    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered", max_nbytes="1M")
                    for index, result in parallel(delayed(_started)(marks, i, fn, threads, pending[i], *shared)
                                                  for i in batch):
                        del pending[index]
                        yield result
            except TerminatedWorkerError:
                for i in [i for i in batch if i in pending and Path(marks, str(i)).exists()]:
                    Path(marks, str(i)).unlink()
                    if len(batch) > 1:  # the whole pool broke: which of its tasks killed it is not known
                        suspects.append(i)
                        continue
                    losses[i] += 1
                    if losses[i] <= retries:
                        logger.warning("a worker process died (killed, or out of memory) while running task %d; "
                                       "running it again (retry %d of %d)", i, losses[i], retries)
                        suspects.append(i)
                        continue
                    error = WorkerLostError(f"the worker process running it died {losses[i]} time(s) (killed, "
                                            f"or out of memory); retried {retries} time(s)")
                    if on_error is None:
                        raise error from None
                    yield on_error(pending.pop(i), error)


# ---- Dask --------------------------------------------------------------------------------------------------


def connect(scheduler: Any, timeout: float = 5.0) -> tuple[Any, bool]:
    """(client, owned): a ``distributed.Client`` for an address (owned: close it when done) or the one given."""
    try:
        from distributed import Client
    except ImportError as e:
        raise ImportError("backend='dask' needs dask.distributed: pip install 'chainrule[dist]' "
                          "(or pip install 'dask[distributed]')") from e
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not _ADDRESS.match(scheduler.strip()):
        raise ValueError(f"scheduler must be an address like tcp://HOST:8786 (what `dask scheduler` prints), "
                         f"got {scheduler!r}")
    address = scheduler.strip()
    try:
        client = Client(address, timeout=f"{float(timeout)}s", set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise SchedulerUnreachableError(
            f"no Dask scheduler answered at {address} within {timeout:g} s ({e}); start one with "
            f"`dask scheduler` and workers with `dask worker {address}`, or check the address and firewall"
        ) from None
    return client, True


def _run_dask(fn: Callable[..., Any], tasks: list[Any], shared: Sequence[Any], scheduler: Any,
              timeout: float, on_error: Callable[[Any, BaseException], Any] | None) -> Iterator[Any]:
    from distributed import as_completed

    client, owned = connect(scheduler, timeout)
    futures: list[Any] = []
    try:
        if not tasks:
            return
        # hash=False: fresh keys per call, so releasing an earlier call's copies never races with this one
        shared_futures = client.scatter(list(shared), broadcast=True, hash=False) if shared else []
        task_of = {}
        for task in tasks:
            fut = client.submit(fn, task, *shared_futures, pure=False)
            task_of[fut.key] = task
            futures.append(fut)
        for fut in as_completed(futures, loop=client.loop):
            try:
                result = fut.result()
            except Exception as e:  # noqa: BLE001 - worker died, task lost, ...
                if on_error is None:
                    raise
                result = on_error(task_of[fut.key], e)
            fut.release()
            yield result
    finally:
        if futures:
            client.cancel(futures)
        if owned:
            client.close()

