"""Worker processes that die with the process that started them.

A ``kill -9`` of ``samplescout index`` gives its workers no chance to be told. On Linux the
kernel sends them SIGKILL when their parent dies (``PR_SET_PDEATHSIG``); everywhere, a
thread in each worker watches the parent's pid as a fallback. With the workers gone the
multiprocessing resource tracker sees its pipe close, unlinks the pool's semaphores and
exits too. Runs in the worker process, from its initializer.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Exit this process as soon as ``parent_pid`` is no longer its parent. Worker only."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watch below still works
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), daemon=True,
                     name="parent-watch").start()


def _watch(parent_pid: int) -> None:
    stop = threading.Event()
    while not stop.wait(WATCH_INTERVAL_S):
        if os.getppid() != parent_pid:
            os._exit(1)


def init_scan_worker(parent_pid: int, model_path: str | None, known: frozenset[str],
                     pid_slots=None) -> None:
    """The scanner's worker initializer: tie the worker to its parent, note this worker's
    pid in the first free slot of ``pid_slots`` (a shared array, for the parent's kill),
    then load the encoder. SIGINT is ignored by ``init_worker``; the parent blocked it while
    starting the worker, so a Ctrl-C to the whole process group during start-up is dropped,
    not fatal."""
    from app.analysis import init_worker

    from app.priority import as_background

    die_with_parent(parent_pid)
    if pid_slots is not None:
        with pid_slots.get_lock():
            free = next((i for i, pid in enumerate(pid_slots) if not pid), None)
            if free is not None:
                pid_slots[free] = os.getpid()
    as_background()          # the audio process wins over the scan
    init_worker(model_path, known)  # sets SIGINT to SIG_IGN, discarding a pending one
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def is_child_of(pid: int, parent_pid: int) -> bool:
    """True when process ``pid`` exists and its parent is ``parent_pid`` (so a pid reused by
    another process is never signalled). Linux /proc; any thread."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return len(fields) > 1 and int(fields[1]) == parent_pid


def init_background_worker(parent_pid: int) -> None:
    """Initializer of a worker process that only computes (duplicate checks): tie it to its
    parent, leave Ctrl-C to the parent (which stops handing out work and joins it) and lower
    its priority (``app.priority.as_background``)."""
    from app.priority import as_background

    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    as_background()
