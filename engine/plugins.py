"""Effect catalogue and VST3 plugin discovery.

Built-in effects come from pedalboard, with a table of slider ranges for
each parameter. VST3 plugins are probed out of process
(``python -m engine.plugin_probe``) with a timeout, so a plugin that hangs
or crashes while loading is reported and skipped; probe results are cached
as JSON. Only a plugin whose probe succeeded is loaded into this process.

Every function here runs on a control thread (UI, worker, CLI), never on an
audio thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import pedalboard

from engine.errors import SampleScoutError
from engine.json_file import JsonFileError, read_json_file

CACHE_FORMAT = "samplescout-vst3-scan"
CACHE_VERSION = 1
CACHE_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_PROBE_TIMEOUT = 30.0
STOP_POLL_S = 0.1            # how soon a running probe notices that probing was stopped
STOPPED = "probing stopped before this plugin was loaded"


class PluginError(SampleScoutError):
    """A plugin could not be found, probed or loaded (message is user-facing)."""


class PluginPathError(PluginError):
    """A plugin path is not a VST3 bundle inside the allowed folders."""


@dataclass(frozen=True)
class ParamSpec:
    """Slider range of one built-in effect parameter."""

    name: str
    min: float
    max: float
    default: float
    units: str = ""


@dataclass(frozen=True)
class ParameterInfo:
    """One parameter as the UI shows it (values in the parameter's own units)."""

    name: str
    min: float
    max: float
    default: float
    value: float
    units: str = ""
    label: str = ""
    is_boolean: bool = False


def _p(name: str, lo: float, hi: float, default: float, units: str = "") -> ParamSpec:
    return ParamSpec(name, float(lo), float(hi), float(default), units)


# Ranges chosen for sliders; defaults are pedalboard's own except where a
# pedalboard default makes the effect inaudible (Compressor ratio 1).
BUILTIN_EFFECTS: dict[str, tuple[ParamSpec, ...]] = {
    "Gain": (_p("gain_db", -60, 24, 0, "dB"),),
    "HighpassFilter": (_p("cutoff_frequency_hz", 10, 20000, 50, "Hz"),),
    "LowpassFilter": (_p("cutoff_frequency_hz", 10, 20000, 50, "Hz"),),
    "HighShelfFilter": (
        _p("cutoff_frequency_hz", 10, 20000, 440, "Hz"),
        _p("gain_db", -24, 24, 0, "dB"),
        _p("q", 0.1, 10, 0.7071067690849304),
    ),
    "LowShelfFilter": (
        _p("cutoff_frequency_hz", 10, 20000, 440, "Hz"),
        _p("gain_db", -24, 24, 0, "dB"),
        _p("q", 0.1, 10, 0.7071067690849304),
    ),
    "PeakFilter": (
        _p("cutoff_frequency_hz", 10, 20000, 440, "Hz"),
        _p("gain_db", -24, 24, 0, "dB"),
        _p("q", 0.1, 10, 0.7071067690849304),
    ),
    "NoiseGate": (
        _p("threshold_db", -100, 0, -100, "dB"),
        _p("ratio", 1, 100, 10),
        _p("attack_ms", 0.01, 500, 1, "ms"),
        _p("release_ms", 1, 5000, 100, "ms"),
    ),
    "Compressor": (
        _p("threshold_db", -60, 0, 0, "dB"),
        _p("ratio", 1, 50, 1),
        _p("attack_ms", 0.01, 500, 1, "ms"),
        _p("release_ms", 1, 5000, 100, "ms"),
    ),
    "Limiter": (
        _p("threshold_db", -60, 0, -10, "dB"),
        _p("release_ms", 1, 5000, 100, "ms"),
    ),
    "Reverb": (
        _p("room_size", 0, 1, 0.5),
        _p("damping", 0, 1, 0.5),
        _p("wet_level", 0, 1, 0.33000001311302185),
        _p("dry_level", 0, 1, 0.4000000059604645),
        _p("width", 0, 1, 1),
        _p("freeze_mode", 0, 1, 0),
    ),
    "Delay": (
        _p("delay_seconds", 0, 2, 0.5, "s"),
        _p("feedback", 0, 1, 0),
        _p("mix", 0, 1, 0.5),
    ),
    "Chorus": (
        _p("rate_hz", 0, 20, 1, "Hz"),
        _p("depth", 0, 1, 0.25),
        _p("centre_delay_ms", 1, 100, 7, "ms"),
        _p("feedback", -0.95, 0.95, 0),
        _p("mix", 0, 1, 0.5),
    ),
    "Phaser": (
        _p("rate_hz", 0, 20, 1, "Hz"),
        _p("depth", 0, 1, 0.5),
        _p("centre_frequency_hz", 20, 10000, 1300, "Hz"),
        _p("feedback", -0.95, 0.95, 0),
        _p("mix", 0, 1, 0.5),
    ),
    "Distortion": (_p("drive_db", 0, 60, 25, "dB"),),
    "Clipping": (_p("threshold_db", -60, 0, -6, "dB"),),
    "Bitcrush": (_p("bit_depth", 1, 32, 8, "bits"),),
    "Invert": (),
}

# pedalboard effects a chain refuses, with the reason shown to the user.
UNSUPPORTED_EFFECTS = {
    # pedalboard 0.9.26: streamed with reset=False, PitchShift returns only
    # silence and fewer frames than it was given (one-shot processing works).
    "PitchShift": "PitchShift produces no output when streamed block by block; it is not available in chains",
    "Convolution": "Convolution needs an impulse-response file and is not available in chains",
    "Resample": "Resample changes latency with the block size and is not available in chains",
}


def builtin_effect_names() -> list[str]:
    """Names of the built-in effects a chain accepts."""
    return list(BUILTIN_EFFECTS)


def builtin_param_specs(effect: str) -> tuple[ParamSpec, ...]:
    """Parameter table of one built-in effect; PluginError if unknown."""
    if effect in UNSUPPORTED_EFFECTS:
        raise PluginError(UNSUPPORTED_EFFECTS[effect])
    try:
        return BUILTIN_EFFECTS[effect]
    except KeyError:
        raise PluginError(
            f"unknown effect {effect!r}; known effects: {', '.join(BUILTIN_EFFECTS)}"
        ) from None


def check_builtin_value(effect: str, name: str, value: object) -> float:
    """Validated float for a built-in parameter; PluginError with the reason otherwise."""
    specs = {s.name: s for s in builtin_param_specs(effect)}
    if name not in specs:
        raise PluginError(f"{effect} has no parameter {name!r}; it has: {', '.join(specs) or 'none'}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PluginError(f"{effect}.{name} must be a number, got {type(value).__name__}")
    v = float(value)
    spec = specs[name]
    if not (spec.min <= v <= spec.max):  # also rejects NaN
        raise PluginError(f"{effect}.{name} = {v} is outside {spec.min}..{spec.max} {spec.units}".rstrip())
    return v


def create_builtin(effect: str, params: dict[str, object] | None = None) -> pedalboard.Plugin:
    """A new pedalboard built-in effect with validated parameter values."""
    specs = builtin_param_specs(effect)
    values = {s.name: s.default for s in specs}
    for name, value in (params or {}).items():
        values[name] = check_builtin_value(effect, name, value)
    return getattr(pedalboard, effect)(**values)


def builtin_parameters(effect: str, plugin: pedalboard.Plugin) -> list[ParameterInfo]:
    """Current parameters of a built-in effect instance."""
    return [
        ParameterInfo(s.name, s.min, s.max, s.default, float(getattr(plugin, s.name)), s.units, s.units)
        for s in builtin_param_specs(effect)
    ]


def vst3_parameters(plugin: pedalboard.Plugin) -> list[ParameterInfo]:
    """Automatable numeric parameters of a loaded VST3 plugin.

    Read-only meters (gain reduction, output level) and host-info values that
    DPF plugins publish as parameters are not automatable and are left out.
    """
    out = []
    for name, p in plugin.parameters.items():
        if not p.is_automatable or p.type is not float or p.min_value is None:
            continue
        default = p.min_value + (p.max_value - p.min_value) * p.default_raw_value
        out.append(
            ParameterInfo(
                name,
                float(p.min_value),
                float(p.max_value),
                float(default),
                float(getattr(plugin, name)),
                (p.units or "").strip(),
                (p.label or "").strip(),
                bool(p.is_boolean),
            )
        )
    return out


# ---------------------------------------------------------------------------
# VST3 folders and path checks


def standard_vst3_dirs(platform: str | None = None) -> list[Path]:
    """The VST3 folders a host looks in by convention on this platform."""
    platform = platform or sys.platform
    home = Path.home()
    if platform.startswith("linux"):
        return [Path("/usr/lib/vst3"), Path("/usr/local/lib/vst3"), home / ".vst3"]
    if platform == "darwin":
        return [Path("/Library/Audio/Plug-Ins/VST3"), home / "Library/Audio/Plug-Ins/VST3"]
    if platform.startswith("win"):
        common = Path(os.environ.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files"))
        local = Path(os.environ.get("LOCALAPPDATA", str(home / "AppData" / "Local")))
        return [common / "VST3", local / "Programs" / "Common" / "VST3"]
    return [home / ".vst3"]


def resolve_roots(extra_paths: Iterable[str | os.PathLike] = (), include_standard: bool = True) -> list[Path]:
    """Existing VST3 folders (standard ones plus extra_paths), resolved, without duplicates."""
    roots: list[Path] = []
    candidates = (list(standard_vst3_dirs()) if include_standard else []) + [Path(p) for p in extra_paths]
    for c in candidates:
        c = c.expanduser()
        if c.is_dir():
            r = c.resolve()
            if r not in roots:
                roots.append(r)
    return roots


def check_plugin_path(path: str | os.PathLike, allowed_roots: Iterable[Path]) -> Path:
    """The resolved path of a VST3 bundle if it lies inside one of allowed_roots.

    Raises PluginPathError for relative paths, ``..`` components, a name not
    ending in .vst3, or a location (after following symlinks) outside the roots.
    """
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise PluginPathError("plugin path must be a non-empty string")
    p = Path(text)
    if not p.is_absolute():
        raise PluginPathError(f"plugin path must be absolute: {text!r}")
    if ".." in p.parts:
        raise PluginPathError(f"plugin path may not contain '..': {text!r}")
    if p.suffix.lower() != ".vst3":
        raise PluginPathError(f"not a VST3 bundle (name must end in .vst3): {text!r}")
    resolved = p.resolve()
    roots = [Path(r).resolve() for r in allowed_roots]
    if not any(resolved != r and resolved.is_relative_to(r) for r in roots):
        shown = ", ".join(str(r) for r in roots) or "none"
        raise PluginPathError(f"plugin {text!r} is outside the allowed VST3 folders ({shown})")
    if not resolved.exists():
        raise PluginPathError(f"plugin not found: {text!r}")
    return resolved


def find_vst3_bundles(roots: Iterable[Path]) -> list[Path]:
    """All *.vst3 bundles under the roots (a bundle's insides are not searched)."""
    found: list[Path] = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in sorted(dirnames + filenames):
                if name.lower().endswith(".vst3"):
                    found.append(Path(dirpath) / name)
            dirnames[:] = [d for d in dirnames if not d.lower().endswith(".vst3")]
    return sorted(set(found))


def _bundle_signature(path: Path) -> list[float]:
    """Size and newest mtime of a bundle's files: a cached probe is stale when it changes."""
    size, newest = 0, 0.0
    paths = [path] if path.is_file() else [Path(d) / f for d, _, fs in os.walk(path) for f in fs]
    for f in paths:
        try:
            st = f.stat()
        except OSError:
            continue
        size += st.st_size
        newest = max(newest, st.st_mtime)
    return [float(size), newest]


# ---------------------------------------------------------------------------
# Out-of-process probing


@dataclass
class ProbeResult:
    """What probing one plugin found. ``ok`` is False when loading failed or timed out."""

    path: str
    ok: bool
    name: str = ""
    vendor: str = ""
    is_instrument: bool = False
    channels: list[int] = field(default_factory=list)
    layout: str = ""  # "mono", "stereo" or "mono+stereo"
    parameters: list[dict] = field(default_factory=list)
    latency_samples: int = 0
    load_seconds: float = 0.0
    error: str = ""
    timed_out: bool = False
    signature: list[float] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> "ProbeResult":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def layout_name(channels: Iterable[int]) -> str:
    """'mono', 'stereo' or 'mono+stereo' for a set of supported channel counts."""
    chans = sorted(set(channels))
    names = {1: "mono", 2: "stereo"}
    return "+".join(names.get(c, f"{c}ch") for c in chans)


def probe_plugin(path: str | os.PathLike, timeout: float = DEFAULT_PROBE_TIMEOUT,
                 stopped: threading.Event | None = None) -> ProbeResult:
    """Load one plugin in a child process and report it; never hangs longer than timeout.
    When ``stopped`` is set meanwhile the child is killed and the result's error is
    ``STOPPED`` (not a verdict on the plugin)."""
    path = str(path)
    if stopped is not None and stopped.is_set():
        return ProbeResult(path, False, name=Path(path).stem, error=STOPPED)
    with tempfile.TemporaryDirectory(prefix="ss-probe-") as tmp:
        out_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "engine.plugin_probe", path, str(out_file)]
        env = dict(os.environ)
        project_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = project_root + os.pathsep + env.get("PYTHONPATH", "")
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return ProbeResult(path, False, error=f"could not start the probe process: {exc}")
        try:
            stderr = _wait_probe(proc, start + timeout, stopped)
        except InterruptedError:
            _kill(proc)
            return ProbeResult(path, False, name=Path(path).stem, error=STOPPED)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return ProbeResult(
                path,
                False,
                name=Path(path).stem,
                error=f"loading did not finish within {timeout:g} s; skipped",
                timed_out=True,
                load_seconds=round(time.monotonic() - start, 3),
            )
        elapsed = round(time.monotonic() - start, 3)
        if out_file.exists():
            try:
                data = json.loads(out_file.read_text())
                result = ProbeResult.from_dict(data)
                result.path = path
                return result
            except (ValueError, TypeError) as exc:
                return ProbeResult(path, False, name=Path(path).stem, error=f"unreadable probe output: {exc}")
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:] if stderr else []
        reason = f"probe process exited with code {proc.returncode}"
        if proc.returncode and proc.returncode < 0:
            reason = f"plugin crashed the probe process (signal {-proc.returncode})"
        if tail:
            reason += ": " + " | ".join(tail)
        return ProbeResult(path, False, name=Path(path).stem, error=reason, load_seconds=elapsed)


def _wait_probe(proc: subprocess.Popen, deadline: float, stopped: threading.Event | None) -> bytes:
    """The probe's stderr once it exits; TimeoutExpired past the deadline, InterruptedError
    as soon as ``stopped`` is set."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, 0)
        try:
            return proc.communicate(timeout=min(left, STOP_POLL_S) if stopped is not None
                                    else left)[1]
        except subprocess.TimeoutExpired:
            if stopped is not None and stopped.is_set():
                raise InterruptedError from None


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError, AttributeError, OSError):
        proc.kill()
    proc.wait()


# ---------------------------------------------------------------------------
# Scanning with a cache


def default_cache_dir() -> Path:
    """Per-user cache folder for scan results."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("samplescout"))


@dataclass
class ScanReport:
    """Outcome of a scan: one ProbeResult per bundle found."""

    results: list[ProbeResult]
    roots: list[str]
    seconds: float
    from_cache: int

    @property
    def loaded(self) -> list[ProbeResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[ProbeResult]:
        return [r for r in self.results if not r.ok]

    def get(self, path: str | os.PathLike) -> ProbeResult | None:
        key = str(Path(path).resolve())
        return next((r for r in self.results if str(Path(r.path).resolve()) == key), None)


class PluginScanner:
    """Finds VST3 bundles, probes each out of process and caches the results.

    Thread-safe for use from control threads; never call it from an audio thread.
    """

    def __init__(
        self,
        extra_paths: Iterable[str | os.PathLike] = (),
        cache_dir: str | os.PathLike | None = None,
        timeout: float = DEFAULT_PROBE_TIMEOUT,
        include_standard: bool = True,
        workers: int = 2,
    ) -> None:
        self.extra_paths = [Path(p).expanduser() for p in extra_paths]
        self.include_standard = include_standard
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.timeout = float(timeout)
        self.workers = max(1, int(workers))
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Any thread: kill the running probes and start no more (an app that closes does not
        wait for a slow plugin). What was probed so far stays cached; the rest is probed by
        the next scanner."""
        self._stopped.set()

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / "vst3_scan.json"

    def roots(self) -> list[Path]:
        """The folders plugins may be loaded from (existing ones only)."""
        return resolve_roots(self.extra_paths, self.include_standard)

    def _read_cache(self) -> dict[str, ProbeResult]:
        try:
            data = read_json_file(self.cache_file, max_bytes=CACHE_MAX_BYTES)
        except JsonFileError:
            return {}  # missing or damaged: plugins are probed again
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
            return {}
        out = {}
        for item in data.get("plugins", []):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                try:
                    out[item["path"]] = ProbeResult.from_dict(item)
                except TypeError:
                    continue
        return out

    def _write_cache(self, results: dict[str, ProbeResult]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "plugins": [asdict(r) for r in sorted(results.values(), key=lambda r: r.path)],
        }
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, self.cache_file)

    def scan(self, rescan: bool = False) -> ScanReport:
        """Probe every bundle whose cached result is missing or stale (all of them if rescan)."""
        start = time.monotonic()
        with self._lock:
            roots = self.roots()
            bundles = find_vst3_bundles(roots)
            cache = {} if rescan else self._read_cache()
            results: dict[str, ProbeResult] = {}
            todo: list[tuple[str, list[float]]] = []
            for b in bundles:
                key = str(b)
                sig = _bundle_signature(b)
                cached = cache.get(key)
                if cached is not None and cached.signature == sig:
                    results[key] = cached
                else:
                    todo.append((key, sig))
            from_cache = len(results)
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                probes = pool.map(lambda t: probe_plugin(t[0], self.timeout, self._stopped), todo)
                for (key, sig), res in zip(todo, probes):
                    if res.error == STOPPED:
                        continue            # not probed: neither reported nor cached
                    res.signature = sig
                    results[key] = res
            merged = dict(cache)
            merged.update(results)
            self._write_cache(merged)
        ordered = [results[str(b)] for b in bundles if str(b) in results]
        return ScanReport(ordered, [str(r) for r in roots], round(time.monotonic() - start, 3), from_cache)

    def probe(self, path: str | os.PathLike) -> ProbeResult:
        """Cached probe of one bundle (probing it now if needed); path must be inside roots()."""
        resolved = check_plugin_path(path, self.roots())
        key = str(resolved)
        sig = _bundle_signature(resolved)
        with self._lock:
            cache = self._read_cache()
            cached = cache.get(key)
            if cached is not None and cached.signature == sig:
                return cached
            res = probe_plugin(key, self.timeout)
            res.signature = sig
            cache[key] = res
            self._write_cache(cache)
            return res


def load_vst3(path: str | os.PathLike, scanner: PluginScanner) -> tuple[pedalboard.Plugin, ProbeResult]:
    """Load a VST3 into this process after a successful out-of-process probe.

    Raises PluginPathError for paths outside the scanner's roots and PluginError
    when the probe failed or timed out (the plugin is then never loaded here).
    """
    info = scanner.probe(path)
    if not info.ok:
        raise PluginError(f"plugin {info.name or Path(info.path).name} is not usable: {info.error}")
    try:
        plugin = pedalboard.load_plugin(info.path)
    except Exception as exc:  # noqa: BLE001 - any plugin failure becomes a clear message
        raise PluginError(f"could not load {info.path}: {exc}") from None
    if not isinstance(plugin, pedalboard.VST3Plugin):
        raise PluginError(f"{info.path} is not a VST3 plugin")
    if plugin.is_instrument:
        raise PluginError(f"{info.name} is an instrument, not an effect")
    return plugin, info
