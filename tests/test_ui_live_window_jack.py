"""The window live on a real JACK server (dummy backend): the real ``MainWindow`` over the
real ``SessionHost`` (engine, matcher, pads) and a catalog of Debian samples. A JACK peer in
another process plays into the app's input; the window's own timers poll the host."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.conftest import SONIC_PI, final_answer_shown, require
from tests.jack_fixtures import jack_server  # noqa: F401  (fixture)
from bench.harness.live_peer import start_live_peer

pytestmark = pytest.mark.jack


@pytest.fixture
def live_window(qtbot, tmp_path, isolated_library_dir, monkeypatch, jack_server):  # noqa: F811
    """``live_window()``: the window over a live SessionHost on the test's JACK server, with a
    library of 70 Sonic Pi samples; running, or a failure."""
    require(SONIC_PI, "sonic-pi-samples")
    from app.audio_types import PluginScanner
    from app.library import Library
    from app.scanner import Scanner
    from ui.host import AudioSettings
    from ui.main_window import MainWindow
    from ui.session_host import SessionHost
    from ui.settings import SettingsStore
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = tmp_path / "samples"
    folder.mkdir()
    for path in sorted(SONIC_PI.glob("*.flac"))[:70]:
        shutil.copy(path, folder)
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([folder])
    opened = []

    def open_():
        store = SettingsStore(tmp_path / "cfg")
        store.audio = AudioSettings(hostapi="JACK", block_size=64)
        scanner = PluginScanner(extra_paths=[], include_standard=False,
                                cache_dir=tmp_path / "vst3-cache")
        host = SessionHost(isolated_library_dir, store.audio, plugin_scanner=scanner)
        win = MainWindow(host, store, scan_plugins=False, scan_workers=1)
        qtbot.addWidget(win)
        opened.append(win)
        host.start()
        win.show()
        try:
            qtbot.waitUntil(lambda: host.status().state == "running", timeout=60000)
        except Exception:
            pytest.fail(f"the audio engine did not start: {host.status().message}")
        return win, folder

    yield open_
    for win in opened:
        win.close()
        win.host.close()


def test_with_64_matches_the_pads_page_through_four_pages(qtbot, live_window):
    win, folder = live_window()
    win.list_length.setCurrentIndex(win.list_length.findData(64))
    win.search_file(str(folder / "bd_haus.flac"))
    qtbot.waitUntil(lambda: win.model.rowCount() == 64 and final_answer_shown(win), timeout=60000)
    # the session's worker fills the pads from the same 64 suggestions: 16 a page
    qtbot.waitUntil(lambda: win.host.status().pad_page == (0, 4), timeout=30000)
    win.update_status()
    assert win.status_pads.text() == "pads 1–16 · page 1/4"
    # the pads follow the final list too (the index's order filled them first)
    qtbot.waitUntil(lambda: [s.path for s in win.host.slots()]
                    == [s.path for s in win.model.suggestions()[:16]], timeout=30000)
    win.list_length.setCurrentIndex(win.list_length.findData(32))
    win.search_file(str(folder / "bd_haus.flac"))
    qtbot.waitUntil(lambda: win.host.status().pad_page == (0, 2), timeout=30000)
    win.update_status()
    assert win.status_pads.text() == "pads 1–16 · page 1/2"


def test_the_waveform_follows_a_preview_and_the_meter_the_live_input(qtbot, live_window,
                                                                     jack_server, tmp_path):  # noqa: F811
    win, folder = live_window()
    meter, wave = win.meter, win.waveform
    # first the playhead, while the input is silent (no live update replaces the list)
    boom = str(folder / "bd_boom.flac")                           # 1.7 s
    win.search_file(boom)
    qtbot.waitUntil(lambda: final_answer_shown(win)
                    and any(s.path == boom for s in win.model.suggestions()), timeout=60000)
    row = next(r for r in range(win.model.rowCount()) if win.model.suggestion(r).path == boom)
    win.view.selectRow(row)
    qtbot.waitUntil(lambda: wave.envelope is not None and wave.path == boom, timeout=10000)
    heads = []
    win.meter_timer.timeout.connect(lambda: heads.append(wave.playhead_s))
    win.audition_row(row)
    qtbot.waitUntil(lambda: any(h is not None and h > 0.3 for h in heads), timeout=20000)
    played = [h for h in heads if h is not None]
    assert played == sorted(played) and max(played) <= wave.envelope.duration_s + 0.1
    qtbot.waitUntil(lambda: bool(heads) and heads[-1] is None, timeout=20000)   # gone when it ends

    # then the meter, with a peer playing into the input
    rate = jack_server.sample_rate
    t = np.arange(int(1.5 * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)                   # -6 dBFS peaks, for 1.5 s
    full = np.sign(np.sin(2 * np.pi * 440 * t[:rate // 2]))   # then full scale
    np.save(tmp_path / "tone.npy", np.concatenate([tone, full]).astype(np.float32))
    peer = start_live_peer(jack_server, "play", tmp_path / "tone.npy", "PortAudio:in_", 20,
                           timeout=30)
    readings = []       # (loudest peak shown, clip light, peak figure) at each meter poll
    win.meter_timer.timeout.connect(lambda: readings.append(
        (max(meter.peak_db, default=-120.0), meter.clipped, meter.peak_text())))
    peer.go()
    qtbot.waitUntil(lambda: any(-7.0 < peak < -5.0 for peak, _, _ in readings), timeout=20000)
    qtbot.waitUntil(lambda: meter.clipped, timeout=20000)     # the full-scale part
    tone_shown = [r for r in readings if -7.0 < r[0] < -5.0]
    assert not tone_shown[0][1] and tone_shown[0][2].startswith("-6.")
    peer.result()
