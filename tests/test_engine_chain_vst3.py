"""VST3 scanning (out of process, cached, with timeouts) and VST3 members in chains.

Uses Debian's zam-plugins in /usr/lib/vst3. ZamVerb takes 45-90 s to load there,
which makes it the real hanging plugin for the timeout test.
"""

import gc
import subprocess
import weakref
from pathlib import Path

import numpy as np
import pytest

from engine import plugins
from engine.chain import Chain, ChainError
from engine.plugins import PluginError, PluginPathError, PluginScanner
from tests.conftest import require

VST3_DIR = Path("/usr/lib/vst3")
ZAMCOMP = VST3_DIR / "ZamComp.vst3"
ZAMCOMPX2 = VST3_DIR / "ZamCompX2.vst3"
ZAMVERB = VST3_DIR / "ZamVerb.vst3"

pytestmark = pytest.mark.usefixtures("zam_plugins")


def make_scanner(cache_dir, extra=(VST3_DIR,), timeout=20.0):
    return PluginScanner(extra_paths=extra, cache_dir=cache_dir, timeout=timeout, include_standard=False)


@pytest.fixture(scope="module")
def scanner(tmp_path_factory):
    return make_scanner(tmp_path_factory.mktemp("vst3cache"))


def signal(frames=20000, channels=2, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((frames, channels)).astype(np.float32) * 0.4
    x[frames // 3 : frames // 2] *= 0.01
    return x


def test_standard_folders_per_platform():
    assert Path("/usr/lib/vst3") in plugins.standard_vst3_dirs("linux")
    assert any("Library/Audio/Plug-Ins/VST3" in str(p) for p in plugins.standard_vst3_dirs("darwin"))
    assert any(str(p).endswith("VST3") for p in plugins.standard_vst3_dirs("win32"))


def test_scan_reports_hanging_zamverb_and_loads_the_others(tmp_path):
    require(ZAMVERB, "zam-plugins")
    scanner = make_scanner(tmp_path / "cache", timeout=5.0)
    report = scanner.scan()
    by_name = {Path(r.path).stem: r for r in report.results}
    verb = by_name["ZamVerb"]
    assert not verb.ok and verb.timed_out and "within 5 s" in verb.error
    comp = by_name["ZamComp"]
    assert comp.ok and comp.name == "ZamComp" and comp.vendor == "Damien Zammit"
    assert comp.layout == "mono" and comp.channels == [1] and not comp.is_instrument
    assert {p["name"] for p in comp.parameters} >= {"threshold_db", "ratio", "attack_ms"}
    assert "gain_reduction_db" not in {p["name"] for p in comp.parameters}  # read-only meter
    assert by_name["ZamCompX2"].layout == "stereo"
    assert len(report.loaded) >= 10 and all(r.load_seconds >= 0 for r in report.results)
    # The cache answers the second scan: nothing is probed again, not even the slow one.
    assert scanner.cache_file.exists()
    again = scanner.scan()
    assert again.from_cache == len(report.results)
    assert again.get(ZAMVERB).timed_out
    with pytest.raises(PluginError, match="not usable"):
        plugins.load_vst3(ZAMVERB, scanner)


def test_broken_and_crashing_bundles_are_reported(tmp_path):
    root = tmp_path / "vst3"
    garbage = root / "Garbage.vst3" / "Contents" / "x86_64-linux"
    garbage.mkdir(parents=True)
    (garbage / "Garbage.so").write_bytes(b"not a shared object")
    crash = root / "Crash.vst3" / "Contents" / "x86_64-linux"
    crash.mkdir(parents=True)
    src = tmp_path / "crash.c"
    src.write_text("#include <stdlib.h>\n__attribute__((constructor)) static void boom(void) { abort(); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(crash / "Crash.so"), str(src)], check=True)
    report = make_scanner(tmp_path / "cache", extra=(root,), timeout=20.0).scan()
    by_name = {Path(r.path).stem: r for r in report.results}
    assert set(by_name) == {"Garbage", "Crash"}
    assert not by_name["Garbage"].ok and by_name["Garbage"].error
    assert not by_name["Crash"].ok and "crashed" in by_name["Crash"].error


def test_paths_outside_roots_are_refused(scanner, tmp_path):
    roots = scanner.roots()
    with pytest.raises(PluginPathError, match="outside the allowed"):
        plugins.check_plugin_path(tmp_path / "Evil.vst3", roots)
    with pytest.raises(PluginPathError, match=r"'\.\.'"):
        plugins.check_plugin_path("/usr/lib/vst3/../vst3/ZamComp.vst3", roots)
    with pytest.raises(PluginPathError, match="absolute"):
        plugins.check_plugin_path("ZamComp.vst3", roots)
    with pytest.raises(PluginPathError, match="must end in .vst3"):
        plugins.check_plugin_path("/usr/lib/vst3/ZamComp.vst3/Contents/x86_64-linux/ZamComp.so", roots)
    # A link inside an allowed folder that points out of it is judged by its target.
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside" / "Evil.vst3"
    outside.mkdir(parents=True)
    (root / "Evil.vst3").symlink_to(outside)
    with pytest.raises(PluginPathError, match="outside"):
        plugins.check_plugin_path(root / "Evil.vst3", [root])
    assert plugins.check_plugin_path(ZAMCOMP, roots) == ZAMCOMP.resolve()


@pytest.mark.parametrize("path", [ZAMCOMP, ZAMCOMPX2, VST3_DIR / "ZamEQ2.vst3", VST3_DIR / "ZamDelay.vst3"])
def test_vst3_output_is_independent_of_block_size(scanner, path):
    x = signal()
    outputs = {}
    for bs in (1, 7, 63, 64, 100, 512, 4096):
        chain = Chain(channels=2, scanner=scanner)
        mid = chain.add_vst3(str(path))
        if path == ZAMCOMP:
            chain.set_parameter(mid, "threshold_db", -30.0)
            chain.set_parameter(mid, "ratio", 8.0)
        outputs[bs] = np.concatenate([chain.process(x[i : i + bs]) for i in range(0, len(x), bs)])
    ref = outputs[4096]
    assert ref.shape == x.shape and np.abs(ref).max() > 1e-3
    for bs, y in outputs.items():
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5, err_msg=f"{path.name} at block size {bs}")


def test_mono_plugin_gets_a_mono_path_in_a_stereo_chain(scanner):
    chain = Chain(channels=2, scanner=scanner)
    mid = chain.add_vst3(str(ZAMCOMP))
    assert chain.members()[0].layout == "mono"
    x = signal(frames=4096)
    y = chain.process(x)
    np.testing.assert_array_equal(y[:, 0], y[:, 1])
    # Same as the plugin fed the mono downmix directly.
    import pedalboard

    ref = pedalboard.load_plugin(str(ZAMCOMP))
    ref(np.zeros((1, chain.max_block_size), np.float32), 48000, reset=True)
    expect = ref(np.ascontiguousarray(x.mean(axis=1)[None, :]), 48000, reset=False)[0]
    np.testing.assert_allclose(y[:, 0], expect, rtol=0, atol=1e-6)
    params = {p.name: p for p in chain.parameters(mid)}
    assert params["threshold_db"].units == "dB" and params["threshold_db"].min == -80.0
    with pytest.raises(ChainError, match="outside"):
        chain.set_parameter(mid, "threshold_db", 10.0)


def test_stereo_plugin_in_a_mono_chain(scanner):
    chain = Chain(channels=1, scanner=scanner)
    chain.add_vst3(str(ZAMCOMPX2))
    x = signal(frames=2048, channels=1)
    y = chain.process(x)
    assert y.shape == x.shape and np.abs(y).max() > 1e-3


def test_removed_vst3_is_freed(scanner):
    chain = Chain(channels=2, scanner=scanner)
    mid = chain.add_vst3(str(ZAMCOMP))
    chain.process(signal(frames=512))
    ref = weakref.ref(chain.member(mid).plugin)
    chain.remove(mid)
    gc.collect()
    assert ref() is None


def test_stopping_a_scan_kills_the_hanging_probe_and_caches_only_what_was_probed(tmp_path):
    """A window that closes stops its scan: ZamVerb's probe (minutes to load) is killed at
    once, and it is not cached as failed (the next scan probes it again)."""
    import threading
    import time
    folder = tmp_path / "plugins"
    folder.mkdir()
    for bundle in (ZAMCOMP, ZAMVERB):
        (folder / bundle.name).symlink_to(bundle)
    scanner = make_scanner(tmp_path / "cache", extra=(folder,), timeout=60.0)
    scanner.workers = 1
    reports = []
    worker = threading.Thread(target=lambda: reports.append(scanner.scan()))
    worker.start()
    deadline = time.monotonic() + 30
    verb = str(folder / "ZamVerb.vst3")
    while time.monotonic() < deadline and not _probing(verb):   # ZamComp done, ZamVerb loading
        time.sleep(0.05)
    stopped_at = time.monotonic()
    scanner.stop()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - stopped_at < 2
    (report,) = reports
    assert [r.name for r in report.results] == ["ZamComp"] and report.results[0].ok
    assert not _probing(verb)
    import json
    cached = json.loads(scanner.cache_file.read_text())["plugins"]
    assert [c["path"] for c in cached] == [str(folder / "ZamComp.vst3")]


def _probing(bundle: str) -> bool:
    """A probe process for this bundle is running (read from /proc)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"engine.plugin_probe" in args and bundle.encode() in args:
            return True
    return False
