"""Child process that loads one plugin and writes what it found as JSON.

Usage: ``python -m engine.plugin_probe PLUGIN_PATH RESULT_JSON``

Run by engine.plugins.probe_plugin in a process of its own, so a plugin that
hangs or crashes takes only this process down. Plugins print freely to
stdout/stderr, which is why the result goes to a file.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

import numpy as np

PROBE_SAMPLE_RATE = 48000
PROBE_FRAMES = 256


def supported_channels(plugin, sample_rate: int = PROBE_SAMPLE_RATE) -> list[int]:
    """Channel counts (1 and/or 2) the plugin processes without error."""
    ok = []
    for channels in (1, 2):
        try:
            out = plugin(np.zeros((channels, PROBE_FRAMES), np.float32), sample_rate, reset=True)
        except Exception:  # noqa: BLE001 - a refusal is the answer we are looking for
            continue
        if out.shape[0] == channels:
            ok.append(channels)
    return ok


def probe(path: str) -> dict:
    from engine.plugins import layout_name, vst3_parameters
    import pedalboard

    start = time.monotonic()
    try:
        plugin = pedalboard.load_plugin(path)
    except Exception as exc:  # noqa: BLE001
        return {"path": path, "ok": False, "error": f"load failed: {exc}",
                "load_seconds": round(time.monotonic() - start, 3)}
    load_seconds = time.monotonic() - start
    channels = [] if plugin.is_instrument else supported_channels(plugin)
    result = {
        "path": path,
        "ok": bool(channels) or plugin.is_instrument,
        "name": plugin.name,
        "vendor": getattr(plugin, "manufacturer_name", "") or "",
        "is_instrument": bool(plugin.is_instrument),
        "channels": channels,
        "layout": layout_name(channels),
        "parameters": [asdict(p) for p in vst3_parameters(plugin)],
        "latency_samples": int(getattr(plugin, "reported_latency_samples", 0) or 0),
        "load_seconds": round(load_seconds, 3),
    }
    if not result["ok"]:
        result["error"] = "plugin processes neither mono nor stereo audio"
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m engine.plugin_probe PLUGIN_PATH RESULT_JSON", file=sys.stderr)
        return 2
    path, out_file = argv
    result = probe(path)
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Some plugins hang in their destructors; the result is already written.
    import os

    os._exit(code)
