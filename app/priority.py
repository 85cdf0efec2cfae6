"""Background priority for the library's scan and embedding workers, so the audio process
keeps its headroom while the engine runs.

A worker process calls ``as_background`` once (the scanner's worker initializer): CPU
niceness ``BACKGROUND_NICE`` and the lowest best-effort I/O priority (Linux ``ioprio_set``
through ctypes; elsewhere the I/O part is skipped). While a live session runs in this
process (``live_session``), a scan also starts fewer workers (``scan_workers``).

Threads: any thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import threading

BACKGROUND_NICE = 10
IOPRIO_CLASS_BE = 2
IOPRIO_LOWEST_BE = 7
IOPRIO_CLASS_SHIFT = 13
IOPRIO_WHO_PROCESS = 1
# ioprio_set / ioprio_get syscall numbers
_SYSCALLS = {"x86_64": (251, 252), "aarch64": (30, 31), "arm64": (30, 31)}

_lock = threading.Lock()
_live_sessions = 0


def _syscall(index: int, *args) -> int:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None or not hasattr(os, "sched_getaffinity"):
        return -1
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.syscall(numbers[index], *[ctypes.c_int(a) for a in args]))


def io_priority(pid: int = 0) -> tuple[int, int] | None:
    """(class, level) of ``pid``'s I/O priority (0: this process); None where unknown."""
    value = _syscall(1, IOPRIO_WHO_PROCESS, pid)
    if value < 0:
        return None
    return value >> IOPRIO_CLASS_SHIFT, value & ((1 << IOPRIO_CLASS_SHIFT) - 1)


def as_background() -> None:
    """Lower this process's CPU and I/O priority for background work (never raises it).
    The I/O priority goes first: whoever sees the lowered nice sees both."""
    _syscall(0, IOPRIO_WHO_PROCESS, 0, (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | IOPRIO_LOWEST_BE)
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < BACKGROUND_NICE:
            os.setpriority(os.PRIO_PROCESS, 0, BACKGROUND_NICE)


@contextlib.contextmanager
def live_session():
    """Marks a live session (engine and matcher) running in this process."""
    global _live_sessions
    with _lock:
        _live_sessions += 1
    try:
        yield
    finally:
        with _lock:
            _live_sessions -= 1


def live_session_running() -> bool:
    return _live_sessions > 0


def scan_workers(requested: int) -> int:
    """Worker processes a scan starts: ``requested``, or while a live session runs at most
    half the cores less one (one on a two-core machine), leaving the rest to the audio."""
    if not live_session_running():
        return requested
    return max(1, min(requested, (os.cpu_count() or 2) // 2 - 1))
