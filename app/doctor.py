"""``samplescout doctor``: what is installed, which audio and MIDI APIs work,
where data lives. Every check catches its own failure and reports it as text.
Main thread.
"""

from __future__ import annotations

import functools
import importlib
import platform
from dataclasses import asdict, dataclass
from typing import Callable

from app.stderr_guard import quiet_native_stderr


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def _check(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except Exception as exc:  # noqa: BLE001 — a failed probe is the answer
        return Check(name, False, f"{type(exc).__name__}: {exc}".strip())


def _version(module: str, attr: str = "__version__") -> Callable[[], str]:
    def probe() -> str:
        return str(getattr(importlib.import_module(module), attr, "installed"))
    return probe


def _soundfile() -> str:
    import soundfile
    formats = soundfile.available_formats()
    return (f"{soundfile.__version__}, {soundfile.__libsndfile_version__}; "
            f"mp3 {'yes' if 'MP3' in formats else 'no'}")


def _portaudio() -> str:
    with quiet_native_stderr():
        import sounddevice
    apis = sounddevice.query_hostapis()
    devices = sounddevice.query_devices()
    names = ", ".join(f"{api['name']} ({len(api['devices'])} devices)" for api in apis)
    if not len(devices):
        raise RuntimeError(f"{sounddevice.get_portaudio_version()[1]}: no audio device "
                           "(is an audio server such as JACK or PulseAudio running?)")
    return f"{sounddevice.get_portaudio_version()[1]}; {names}"


def _midi() -> str:
    import rtmidi
    parts, working = [], 0
    for api in rtmidi.get_compiled_api():
        name = rtmidi.get_api_display_name(api)
        try:
            with quiet_native_stderr():
                ports = rtmidi.MidiIn(api).get_ports()
            parts.append(f"{name}: {len(ports)} input ports")
            working += 1
        except Exception as exc:  # noqa: BLE001
            parts.append(f"{name}: unavailable ({exc})")
    summary = f"python-rtmidi {rtmidi.__version__}; " + "; ".join(parts)
    if not working:
        raise RuntimeError(summary)
    return summary


@functools.lru_cache(maxsize=1)
def _encoder():
    """The default encoder, loaded once for the checks that need it."""
    from models.encoder import Encoder
    return Encoder()


def _model() -> str:
    from models.encoder import default_model_path
    encoder = _encoder()
    return f"{encoder.model_id}, {encoder.dim}-d, {default_model_path()}"


def _reranker() -> str:
    from models.reranker import Reranker
    reranker, encoder = Reranker(), _encoder()
    if reranker.encoder_id and reranker.encoder_id != encoder.network_id:
        raise RuntimeError(f"{reranker.model_id} was trained for {reranker.encoder_id}, the encoder is "
                           f"{encoder.network_id}: searches stop at the index's order")
    fit = (f"room fit weight {reranker.room_fit_weight:g}" if reranker.room_fit_weight > 0
           else "no room fit (weight not calibrated)")
    coherence = (f"coherence weight {reranker.coherence_weight:g}" if reranker.coherence_weight > 0
                 else "no coherence term (weight not calibrated)")
    return f"{reranker.model_id} (for {reranker.encoder_id}), {fit}, {coherence}, {reranker.model_path}"


def _library(library_dir: str | None) -> Callable[[], str]:
    def probe() -> str:
        from app.catalog import Catalog
        from app.paths import CATALOG_FILENAME, INDEX_FILENAME, library_dir as resolve
        directory = resolve(library_dir)
        with Catalog(directory / CATALOG_FILENAME) as catalog:
            stats = catalog.stats()
        index = directory / INDEX_FILENAME
        index_state = f"index {index.stat().st_size / 1e6:.1f} MB" if index.exists() else "no index yet"
        return (f"{directory}: {stats['indexed']} indexed, {stats['skipped']} skipped, "
                f"{index_state}")
    return probe


def shared_catalogue_check(library_dir: str | None, address: str | None = None) -> Check | None:
    """The shared catalogue this library dir uses, or the one at ``address`` (connection,
    versions, the role's rights); None when it uses its own local catalog."""
    from app.library import catalog_address
    from app.paths import library_dir as resolve
    directory = resolve(library_dir)
    address = address or catalog_address(directory)
    if address is None:
        return None

    def probe() -> str:
        from app.machine import machine_id
        from app.pg_store import PgCatalog
        with PgCatalog(address, machine_id(directory)) as catalog:
            return catalog.describe()
    return _check("shared catalogue", probe)


def _settings() -> str:
    from app.paths import config_dir
    path = config_dir() / "settings.json"
    return f"{path} ({'saved' if path.exists() else 'not saved yet'})"


def _presets() -> str:
    from pathlib import Path

    from app.paths import user_presets_dir
    from engine.midi import PRESET_DIR
    return f"yours: {user_presets_dir('chains').parent}; shipped: {Path(PRESET_DIR).parent}"


def _cache() -> str:
    from app.paths import cache_dir
    return f"{cache_dir()} (VST3 scan results, rendered previews)"


def run_checks(library_dir: str | None = None) -> list[Check]:
    shared = shared_catalogue_check(library_dir)
    return [c for c in [
        Check("python", True, f"{platform.python_version()} on {platform.platform()}"),
        _check("numpy", _version("numpy")),
        _check("onnxruntime", _version("onnxruntime")),
        _check("encoder model", _model),
        _check("re-ranker model", _reranker),
        _check("hnswlib", lambda: importlib.import_module("hnswlib").__name__ and "importable"),
        _check("soundfile", _soundfile),
        _check("soxr", _version("soxr")),
        _check("audio (PortAudio)", _portaudio),
        _check("MIDI (rtmidi)", _midi),
        _check("plugins (pedalboard)", _version("pedalboard")),
        _check("Qt (PyQt6)", _version("PyQt6.QtCore", "PYQT_VERSION_STR")),
        _check("library", _library(library_dir)),
        shared,
        _check("settings", _settings),
        _check("presets", _presets),
        _check("cache", _cache),
    ] if c is not None]
