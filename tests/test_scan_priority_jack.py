"""While a live session runs (engine on a JACK dummy server, matcher listening), a scan's
worker processes run at background CPU and I/O priority, and fewer of them; the audio
process keeps its own priority."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from app.library import Library
from app.priority import BACKGROUND_NICE, io_priority, scan_workers
from app.scanner import Scanner
from app.session import Session
from engine.stream import StreamConfig
from tests.conftest import SONIC_PI, proc_stats, require, wait_for
from bench.harness.live_support import build_library

pytestmark = pytest.mark.jack


def children() -> dict[int, int]:
    """{pid: nice} of this process's child processes, from /proc/<pid>/stat."""
    return {pid: int(fields[16]) for pid, fields in proc_stats() if int(fields[1]) == os.getpid()}


def test_scan_workers_run_at_background_priority_while_the_engine_runs(jack_server, tmp_path):  # noqa: F811
    require(SONIC_PI, "sonic-pi-samples")
    live_library = tmp_path / "live-library"
    build_library(live_library, tmp_path / "live-samples")
    folder = tmp_path / "to-scan"
    folder.mkdir()
    for src in sorted(SONIC_PI.glob("*.flac"))[:120]:
        shutil.copy(src, folder / src.name)
    cfg = StreamConfig(hostapi="JACK", input_channels=1, output_channels=1, block_size=64)
    session = Session(live_library, cfg, "drums")
    session.start(timeout=20)
    before = children()
    seen: dict[int, tuple[int, tuple | None]] = {}
    # every I/O priority read per worker: a worker that is exiting has dropped its I/O context
    # and reads as class 0, so the check is that each worker was seen at the lowered priority
    io_seen: dict[int, set] = {}
    try:
        assert scan_workers(4) == max(1, min(4, (os.cpu_count() or 2) // 2 - 1))
        reports = []

        def scan() -> None:          # the library is used on the thread that opens it
            with Library(tmp_path / "scanned") as library:
                reports.append(Scanner(library, workers=4).scan([folder]))

        def workers_seen() -> bool:
            for pid, nice in children().items():
                if pid not in before:
                    seen[pid] = (nice, io_priority(pid))
                    io_seen.setdefault(pid, set()).add(seen[pid][1])
            return bool(seen) and all(n >= BACKGROUND_NICE for n, _ in seen.values())

        thread = threading.Thread(target=scan)
        thread.start()
        wait_for(lambda: workers_seen() and len(seen) >= 1, 60)
        while thread.is_alive():             # every worker the scan starts, until it ends
            workers_seen()
            thread.join(0.05)
        audio_nice = {pid: nice for pid, nice in children().items() if pid in before}
    finally:
        session.close()
    assert reports and reports[0].indexed > 100, reports
    assert 1 <= len(seen) <= scan_workers(4), seen
    assert all(nice >= BACKGROUND_NICE for nice, _ in seen.values()), seen
    assert all((2, 7) in ios for ios in io_seen.values() if ios != {None}), io_seen
    # the engine's audio process is not lowered with them
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert audio_nice and all(nice <= own for nice in audio_nice.values()), audio_nice
