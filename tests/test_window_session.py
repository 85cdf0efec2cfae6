"""The real window over a real ``Session`` on a JACK dummy server, through the session
façade only: a JACK peer plays real snares into the input, the window shows the live
matches, the pads follow them by the session's policy, capture and audition go through,
and a long live run leaves the host's containers and memory flat. A source check keeps
``ui`` off the session's insides."""

from __future__ import annotations

import ast
import collections
import os
import queue
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.decode import read_mono
from tests.conftest import SONIC_PI, require
from bench.harness.live_peer import start_live_peer

REPO = Path(__file__).resolve().parent.parent
STEMS = ["sn_dolf", "bd_808", "bd_haus", "elec_snare", "drum_cymbal_closed", "elec_tick",
         "perc_bell", "drum_heavy_kick"]
SR = 48000
# files whose allocations belong to the host layer: nothing they allocate may pile up
HOST_FILES = ("ui/session_host.py", "ui/host.py", "app/session.py", "app/library_tasks.py")
WARM_UPDATES = 30
MEASURED_UPDATES = 170
TRACED_UPDATES = 50        # the last ones, with allocations traced (tracing slows every thread)


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    require(SONIC_PI, "sonic-pi-samples")
    from app.library import Library
    from app.scanner import Scanner
    base = tmp_path_factory.mktemp("window-session")
    root = base / "samples"
    root.mkdir()
    for stem in STEMS:
        shutil.copy(SONIC_PI / f"{stem}.flac", root)
    with Library(base / "library") as library:
        assert Scanner(library, workers=1).scan([root]).indexed == len(STEMS)
    return base / "library", root


def hits(paths: list[Path], spacing_s: float, count: int, lead_s: float = 0.3) -> np.ndarray:
    """``count`` hits cycling through ``paths``, ``spacing_s`` apart, each cut to fit."""
    spacing = int(spacing_s * SR)
    clips = [read_mono(p, SR)[:spacing - SR // 50] for p in paths]
    lead = int(lead_s * SR)
    signal = np.zeros(lead + spacing * count + SR // 2, np.float32)
    for i in range(count):
        clip = clips[i % len(clips)]
        signal[lead + i * spacing:lead + i * spacing + len(clip)] += clip
    return np.clip(signal, -1, 1)


def start_player(server, tmp_path, signal, name):
    path = tmp_path / f"{name}.npy"
    np.save(path, signal)
    return start_live_peer(server, "play", path, "PortAudio:in_")


def open_live_window(qtbot, library_dir, tmp_path):
    from PyQt6.QtWidgets import QApplication
    from ui import theme
    from ui.host import AudioSettings
    from ui.main_window import MainWindow
    from ui.session_host import SessionHost
    from ui.settings import SettingsStore
    theme.apply(QApplication.instance())
    host = SessionHost(library_dir, AudioSettings(hostapi="JACK", block_size=64))
    win = MainWindow(host, SettingsStore(tmp_path / "cfg"), scan_workers=1, scan_plugins=False)
    qtbot.addWidget(win)
    win.show()
    host.start()
    qtbot.waitUntil(lambda: host.session is not None, timeout=60000)
    return host, win


def test_ui_reaches_the_core_only_through_the_session_facade(tmp_path):
    """No module of ``ui`` imports ``engine``, reaches into a session's engine or matcher,
    or builds a library, scanner or catalog of its own."""
    offences = []
    for path in sorted((REPO / "ui").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "engine":
                offences.append(f"{where} imports {node.module}")
            elif isinstance(node, ast.Import):
                offences += [f"{where} imports {a.name}" for a in node.names
                             if a.name.split(".")[0] == "engine"]
            elif isinstance(node, ast.Attribute) and node.attr in ("engine", "matcher"):
                offences.append(f"{where} reaches .{node.attr}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("Library", "Scanner", "Catalog"):
                offences.append(f"{where} builds a {node.func.id}")
    assert offences == []
    from tests.null_host import NullHost
    from ui.host import Host
    from ui.session_host import SessionHost
    assert Host in SessionHost.__mro__ and NullHost not in SessionHost.__mro__
    from ui.host import AudioSettings
    host = SessionHost(tmp_path / "lib", AudioSettings(), live=False)
    try:
        assert not hasattr(host, "calls")
    finally:
        host.close()


@pytest.mark.jack
@pytest.mark.samples
def test_the_window_drives_a_live_session(jack_server, qtbot, tmp_path, small_library):  # noqa: F811
    from PyQt6.QtCore import Qt
    library_dir, root = small_library
    snare = root / "sn_dolf.flac"
    host, win = open_live_window(qtbot, library_dir, tmp_path)
    reasons: list[str] = []
    heard = []
    host.suggestions.connect(lambda u: reasons.append(u.reason))
    errors: list[str] = []
    host.error.connect(errors.append)
    peer = start_player(jack_server, tmp_path, hits([snare], 0.8, 10), "snares")
    try:
        peer.go()
        # live onsets reach the window; the input shows on the level meter and the scope
        qtbot.waitUntil(lambda: "onset" in reasons and win.model.rowCount() > 0, timeout=30000)
        assert win.model.suggestion(0).path == str(snare)
        qtbot.waitUntil(lambda: heard.append(max(host.levels().peak_db)) or heard[-1] > -40,
                        timeout=10000)
        # answers come from the attack now, before a second of input is in: wait for it
        qtbot.waitUntil(lambda: host.input_tail(SR)[0] > SR, timeout=10000)
        end, tail = host.input_tail(SR)
        assert np.abs(tail).max() > 0.01
        assert host.recent_onsets() and host.recent_onsets()[-1] <= end
        # the pads follow what the window shows, by the session's own policy
        qtbot.waitUntil(lambda: bool(host.slots()) and host.slots()[0] is not None
                        and host.slots()[0].path == str(snare), timeout=20000)
        assert host.status().pad_page[1] >= 1
        # capture: the last hit, answered through the session
        win.capture_button.click()
        qtbot.waitUntil(lambda: "capture" in reasons, timeout=20000)
        # audition from the keyboard: a real preview voice plays in the engine (the host's
        # voice tokens count from 1)
        win.view.setFocus()
        qtbot.keyClick(win.view, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: any((host.playhead(v) or 0) > 0 for v in range(1, 4)), timeout=10000)
        status = host.status()
        assert status.state == "running" and "JACK" in status.device
        assert status.index_state.endswith(" vectors")
        # a reload of the index after a scan reaches the session and the window
        with qtbot.waitSignal(host.library_changed, timeout=30000):
            host.reload_library()
        qtbot.waitUntil(lambda: host.status().index_state.split(" ")[0].isdigit()
                        and int(host.status().index_state.split(" ")[0]) > 0, timeout=20000)
        assert errors == []
    finally:
        peer.stop()
        win.close()
        host.close()


def container_sizes(**objects) -> dict[str, int]:
    """Size of every unbounded container held directly by ``objects`` (bounded deques are
    left out: they cannot grow past their maxlen)."""
    sizes = {}
    for name, obj in objects.items():
        for attr, value in vars(obj).items():
            if isinstance(value, collections.deque) and value.maxlen is not None:
                continue
            if isinstance(value, (list, dict, set, tuple, collections.deque)):
                sizes[f"{name}.{attr}"] = len(value)
            elif isinstance(value, queue.Queue):
                sizes[f"{name}.{attr}"] = value.qsize()
    return sizes


def host_layer_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still held that code of the host layer allocated since tracing started."""
    filters = [tracemalloc.Filter(True, os.path.join("*", f)) for f in HOST_FILES]
    return sum(stat.size for stat in snapshot.filter_traces(filters).statistics("filename"))


@pytest.mark.jack
@pytest.mark.samples
def test_a_long_live_run_keeps_the_host_flat(jack_server, qtbot, tmp_path, small_library):  # noqa: F811
    """A few hundred updates (live hits and dropped files) through the real host and window:
    after a warm-up no container of the host, the session or the window grows with them,
    and over the last updates (allocations traced) the host layer keeps no memory."""
    library_dir, root = small_library
    host, win = open_live_window(qtbot, library_dir, tmp_path)
    count = {"updates": 0, "files": 0}

    def counted(update):
        count["updates"] += 1
        count["files"] += update.reason == "file"
    host.suggestions.connect(counted)
    files = [root / f"{stem}.flac" for stem in STEMS]
    peer = start_player(jack_server, tmp_path, hits(files, 0.25, 160), "long-run")
    tracing = False
    try:
        peer.go()
        qtbot.waitUntil(lambda: count["updates"] >= WARM_UPDATES, timeout=60000)
        qtbot.wait(300)     # the pads' fill of the warm-up's last update lands
        before = container_sizes(host=host, session=host.session, window=win, model=win.model)
        target = WARM_UPDATES + MEASURED_UPDATES
        n = 0
        while count["updates"] < target:
            if not tracing and count["updates"] >= target - TRACED_UPDATES:
                tracemalloc.start()
                tracing = True
            answered = count["files"]
            win.search_file(str(files[n % len(files)]))       # a dropped file, between live hits
            n += 1
            qtbot.waitUntil(lambda: count["files"] > answered, timeout=30000)
        qtbot.wait(300)
        held = host_layer_bytes(tracemalloc.take_snapshot())
        after = container_sizes(host=host, session=host.session, window=win, model=win.model)
    finally:
        if tracing:
            tracemalloc.stop()
        peer.stop()
        win.close()
        host.close()
    print(f"host layer: {held} bytes held after {TRACED_UPDATES} traced updates; sizes {after}")
    assert held < 8 * 1024, f"the host layer kept {held} bytes over {TRACED_UPDATES} updates"
    # a slot that holds one pending list or None (session._pending_fill: the pads' next
    # fill) shows up only while it holds one; counted as empty when absent
    growth = {k: (before.get(k, 0), after.get(k, 0)) for k in set(before) | set(after)
              if after.get(k, 0) - before.get(k, 0) > 64}
    assert growth == {}, growth
