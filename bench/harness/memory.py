"""A process's resident memory as the kernel counts it (``/proc/PID/status``; Linux)."""

from __future__ import annotations


def process_memory_kb(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of one process, in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out
