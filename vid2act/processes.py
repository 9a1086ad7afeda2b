"""Episodes in worker processes, with Ctrl-C left to the command that started them."""
from __future__ import annotations

import signal
import threading
from typing import Callable, Iterable, Iterator


def map_in_workers(function: Callable, jobs: Iterable, workers: int, initializer: Callable | None = None,
                   initargs: tuple = ()) -> Iterator:
    """`function` over `jobs` in `workers` spawned processes, results in order. A terminal's Ctrl-C reaches every
    process of the group: the workers start with SIGINT ignored (a disposition kept across exec, so Python in
    the worker never installs its KeyboardInterrupt handler, even while it still imports), and only the command
    stops. On an error or Ctrl-C the jobs not yet started are dropped and the running ones finish."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer,
                               initargs=initargs)
    try:
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
        try:
            results = pool.map(function, jobs, chunksize=1)  # submits every job now: the workers start here
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)
        yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
