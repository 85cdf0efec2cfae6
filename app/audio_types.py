"""The engine's types and helpers the window needs, handed on by the app layer.

``ui`` reaches the engine only through ``app``: effect chains and their presets, plugin
scanning, MIDI maps, audio device descriptions and the stream's settings come from here.
Nothing here runs anything; every name is the engine's own object.
"""

from __future__ import annotations

from engine.chain import Chain, ChainError
from engine.chain_presets import (build_members, chain_to_dict, load_chain_preset, parse_preset,
                                  read_preset, save_chain_preset, shipped_presets)
from engine.json_file import JsonFileError, read_json_file
from engine.devices import NO_DEVICE, AudioDevice, DeviceReport, NoAudioDevice
from engine.midi import ACTIONS, PRESET_DIR as MIDI_PRESET_DIR, MidiMap, MidiMapError, parse_message
from engine.plugins import ParameterInfo, PluginScanner, builtin_effect_names
from engine.stream import EngineError, StreamConfig

def vst3_paths_from_env() -> list[str]:
    """Extra VST3 folders from $SAMPLESCOUT_VST3_PATH (the window's; the CLI adds --vst3-path)."""
    import os
    return [p for p in os.environ.get("SAMPLESCOUT_VST3_PATH", "").split(os.pathsep) if p]


__all__ = ["ACTIONS", "AudioDevice", "Chain", "ChainError", "DeviceReport", "EngineError",
           "MIDI_PRESET_DIR", "MidiMap", "MidiMapError", "NO_DEVICE", "NoAudioDevice",
           "JsonFileError", "ParameterInfo", "PluginScanner", "read_json_file", "StreamConfig", "build_members", "builtin_effect_names",
           "chain_to_dict", "load_chain_preset", "parse_preset", "parse_message", "read_preset",
           "save_chain_preset",
           "shipped_presets", "vst3_paths_from_env"]
