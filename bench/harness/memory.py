"""A process's resident memory as the kernel counts it (``/proc/PID/status``; Linux), and the
processes under it."""

from __future__ import annotations

import os


def process_memory_kb(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of one process, in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out


def tree_pids(pid: int | str = "self") -> list[int]:
    """The process and every process under it, at any depth. Linux (``/proc``)."""
    root = os.getpid() if pid == "self" else int(pid)
    pids, todo = [], [root]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue       # ended meanwhile
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(p) for p in children.read().split())
            except OSError:
                continue
    return pids


def tree_memory_kb(pid: int | str = "self") -> dict[str, int]:
    """The process and every process under it: ``processes``, the sum of their ``Pss`` (each
    shared page counted once, split between its sharers: what the app as a whole holds) and
    of their ``VmRSS``, in kB. Linux (``/proc``)."""
    out = {"processes": 0, "Pss": 0, "VmRSS": 0}
    for one in tree_pids(pid):
        try:
            with open(f"/proc/{one}/smaps_rollup") as rollup:
                pss = next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
            rss = process_memory_kb(one)["VmRSS"]
        except (OSError, StopIteration, KeyError):
            continue       # ended meanwhile
        out["processes"] += 1
        out["Pss"] += pss
        out["VmRSS"] += rss
    return out
