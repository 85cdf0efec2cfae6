"""Smoke test of the real app: `python -m app.cli` under Xvfb against a JACK dummy server.

A JACK peer plays a Sonic Pi snare (twice) into the app's input; the window shows the
matches and saves a screenshot into the test's temp folder (its path is printed; run with
-s to see it). The app is then asked to quit with SIGTERM and must exit with status 0.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SONIC_PI, final_answer_shown, missing_part, require

pytestmark = [pytest.mark.jack, pytest.mark.samples]

REPO = Path(__file__).resolve().parent.parent
LAYOUT = {"Kicks": ["bd_haus", "bd_808", "bd_boom", "drum_heavy_kick"],
          "Snares": ["sn_dolf", "sn_dub", "drum_snare_hard", "elec_snare"],
          "Hats": ["drum_cymbal_closed", "drum_cymbal_open", "elec_tick"],
          "Perc": ["perc_bell", "elec_bell", "tabla_na", "glitch_perc1"],
          "Loops": ["loop_amen", "loop_compus"]}
PLAYED = "sn_dolf"


@pytest.fixture
def xvfb():
    if shutil.which("Xvfb") is None:
        missing_part("Xvfb is not installed (Debian package xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not report a display number")
    yield f":{number}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def build_library(base: Path) -> Path:
    from app.library import Library
    from app.scanner import Scanner
    root = base / "samples"
    for folder, stems in LAYOUT.items():
        (root / folder).mkdir(parents=True)
        for stem in stems:
            shutil.copy(SONIC_PI / f"{stem}.flac", root / folder)
    library_dir = base / "library"
    with Library(library_dir) as library:
        Scanner(library, workers=1).scan([root])
    return library_dir


def wait_for_ports(env: dict, pattern: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True).stdout
        if any(pattern in line for line in out.splitlines()):
            return True
        time.sleep(0.3)
    return False


def wait_for_shown(sidecar: Path, first: str, timeout: float) -> list[str]:
    """The suggestions of the latest snapshot once ``first`` heads them (or at the timeout);
    the app rewrites the sidecar after each update, so a read may catch it half-written."""
    deadline = time.monotonic() + timeout
    shown: list[str] = []
    while time.monotonic() < deadline:
        try:
            shown = json.loads(sidecar.read_text())["suggestions"]
        except (OSError, ValueError, KeyError):
            pass
        if shown[:1] == [first]:
            return shown
        time.sleep(0.2)
    return shown


def test_app_window_shows_suggestions_for_live_input(jack_server, xvfb, tmp_path):
    require(SONIC_PI, "sonic-pi-samples")
    from app.decode import read_mono
    from bench.harness.live_peer import start_live_peer

    library_dir = build_library(tmp_path)
    config = tmp_path / "config" / "samplescout"
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps({"audio": {"hostapi": "JACK", "block_size": 64}}))
    shot = tmp_path / "window.png"
    env = jack_server.env()
    env.update(DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=str(tmp_path / "config"),
               SAMPLESCOUT_UI_SNAPSHOT=str(shot))
    log = open(tmp_path / "app.log", "w")
    app = subprocess.Popen([sys.executable, "-m", "app.cli", "--library-dir", str(library_dir)],
                           env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for_ports(env, ":in_", 60), (tmp_path / "app.log").read_text()[-3000:]
        hit = read_mono(SONIC_PI / f"{PLAYED}.flac", jack_server.sample_rate)
        gap = np.zeros(jack_server.sample_rate, np.float32)
        signal_path = tmp_path / "played.npy"
        np.save(signal_path, np.concatenate([gap[:12000], hit, gap, hit, gap]).astype(np.float32))
        peer = start_live_peer(jack_server, "play", signal_path, "PortAudio.*:in_")
        peer.go()
        peer.result(timeout=60)
        sidecar = shot.with_suffix(".json")
        shown = wait_for_shown(sidecar, f"{PLAYED}.flac", timeout=30)
        assert shown[:1] == [f"{PLAYED}.flac"], (shown, (tmp_path / "app.log").read_text()[-3000:])
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
        app.send_signal(signal.SIGTERM)
        assert app.wait(30) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        log.close()


def test_live_host_on_jack_plays_keys_and_sends_chains_to_the_engine(jack_server, qtbot, tmp_path):
    """In-process: the window over SessionHost on JACK (offscreen); real previews and chains."""
    require(SONIC_PI, "sonic-pi-samples")
    from PyQt6.QtCore import Qt
    from ui.host import AudioSettings
    from ui.main_window import MainWindow
    from ui.session_host import SessionHost
    from ui.settings import SettingsStore

    library_dir = build_library(tmp_path)
    host = SessionHost(library_dir, AudioSettings(hostapi="JACK", block_size=64))
    win = MainWindow(host, SettingsStore(tmp_path / "cfg"), scan_plugins=False)
    qtbot.addWidget(win)
    try:
        host.start()
        qtbot.waitUntil(lambda: host.session is not None, timeout=30000)
        engine = host.session.engine
        errors = []
        host.error.connect(errors.append)
        win.search_file(str(SONIC_PI / "bd_808.flac"))
        qtbot.waitUntil(lambda: final_answer_shown(win), timeout=30000)
        assert win.model.suggestion(0).name == "bd_808.flac"
        win.view.setFocus()
        qtbot.keyClick(win.view, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: bool(host.engine_voices()), timeout=10000)
        voice = host.engine_voices()[0]
        assert voice > 0                                   # the engine started a preview voice
        win.preview_editor.add_effect("Gain")
        win.preview_editor.set_parameter("gain_db", -6.0)
        qtbot.waitUntil(lambda: bool((engine.chain_spec("preview") or {}).get("members")),
                        timeout=20000)
        spec = engine.chain_spec("preview")
        assert spec is not None, errors
        member = spec["members"][0]
        assert member["effect"] == "Gain"
        assert member["params"]["gain_db"] == pytest.approx(-6.0, abs=0.2)
        win.monitor.setChecked(True)
        assert engine.monitoring
        qtbot.waitUntil(lambda: host.status().state == "running", timeout=5000)
        assert "JACK" in host.status().device
        # the status bar shows the stream's own latency (JACK dummy: one 64-frame period out)
        # and which suggestions the pads hold
        qtbot.waitUntil(lambda: host.status().pad_page[1] >= 1, timeout=10000)
        win.update_status()
        assert host.status().output_latency_ms == pytest.approx(1000 * 64 / 48000, rel=0.01)
        assert "out 1.3 ms" in win.status_latency.text()
        assert win.status_pads.text().startswith("pads 1–16 · page 1/")
    finally:
        win.close()
        host.close()


def test_opening_the_window_module_leaves_scipy_for_the_first_detection_or_map():
    """The window's start-up imports only what its first answer needs: scipy (detection's
    fits, the map's picker) loads when one of them is first used."""
    out = subprocess.run([sys.executable, "-c",
                          "import sys, ui.main_window, app.library_tasks; "
                          "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"],
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
