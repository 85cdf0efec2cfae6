"""Shared fixtures. Every test runs with its own library dir, so nothing touches
the user's real catalog; Qt runs offscreen."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A test run started in the background (``make test &``, a CI runner's job) inherits
# SIGINT ignored, and so would every app process a test starts; the tests that press
# Ctrl-C mean a terminal's foreground job, where it is not.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SONIC_PI = Path("/usr/share/sonic-pi/samples")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
LMMS = Path("/usr/share/lmms/samples")

pytest_plugins = ["tests.jack_fixtures"]


@pytest.fixture(autouse=True)
def isolated_library_dir(tmp_path, monkeypatch) -> Path:
    """A fresh library dir for each test, also via SAMPLESCOUT_LIBRARY_DIR."""
    directory = tmp_path / "library-data"
    monkeypatch.setenv("SAMPLESCOUT_LIBRARY_DIR", str(directory))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return directory


IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_part(message: str) -> None:
    """A part the tests need (JACK, a VST3 plugin, Xvfb, Qt, sample packages, root for a
    precondition) is missing: a skip on a developer's machine, a failure under ``CI=true``,
    where `make test` must have installed everything and a skip would hide a gap."""
    if IN_CI:
        pytest.fail(f"required part missing under CI: {message}", pytrace=False)
    pytest.skip(message)


def require(path: Path, package: str) -> Path:
    if not path.exists():
        missing_part(f"Debian package {package} is not installed ({path} missing); "
                     "`make test` installs it")
    return path


@pytest.fixture
def sonic_pi_samples() -> Path:
    return require(SONIC_PI, "sonic-pi-samples")


VST3_DIR = Path("/usr/lib/vst3")


@pytest.fixture
def zam_plugins() -> Path:
    """Debian's zam-plugins VST3 folder (ZamComp at least)."""
    require(VST3_DIR / "ZamComp.vst3", "zam-plugins")
    return VST3_DIR


def proc_stats():
    """(pid, fields of /proc/<pid>/stat after the command name) of every live process:
    fields[0] is the state, [1] the parent pid, [2] the process group, [16] the nice value.
    Processes that end while being read are left out."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                yield int(name), f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def abort_with_stacks(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """A child that hangs: SIGABRT first, so that one started with ``PYTHONFAULTHANDLER=1``
    prints every thread's stack to its stderr (the failure then says where it hung), then
    SIGKILL if it is still there after ``grace_s``. Reads none of its pipes."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGABRT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def dump_and_kill(proc: subprocess.Popen, grace_s: float = 10.0) -> tuple[str, str]:
    """``abort_with_stacks``, then the child's (stdout, stderr), for pipes nobody reads."""
    abort_with_stacks(proc, grace_s)
    return proc.communicate(timeout=30)


def final_answer_shown(window) -> bool:
    """The window lists a search's final answer: a dropped file's index order comes first and
    the re-ranked list replaces it (reordering rows), so a test that picks rows by position
    waits for this."""
    update = window.last_update
    return update is not None and update.stage == "final" and window.model.rowCount() > 0


def wait_for(condition, timeout: float = 30.0, interval: float = 0.02):
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` seconds
    pass (then its last value, for the caller's assert). The timeout is generous on purpose:
    it bounds a hang, it does not measure speed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
