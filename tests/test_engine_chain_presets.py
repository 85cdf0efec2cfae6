"""Chain presets: shipped presets, VST3 state round trip, malformed and hostile files."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from engine import chain_presets as cp
from engine.chain import Chain
from engine.plugins import PluginScanner
from tests.conftest import missing_part

VST3_DIR = Path("/usr/lib/vst3")
ZAMCOMP = VST3_DIR / "ZamComp.vst3"
needs_zam = pytest.mark.usefixtures("zam_plugins")


@pytest.fixture(scope="module")
def scanner(tmp_path_factory):
    return PluginScanner(extra_paths=[VST3_DIR], cache_dir=tmp_path_factory.mktemp("cache"),
                         timeout=20.0, include_standard=False)


def signal(frames=8192, channels=2):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((frames, channels)).astype(np.float32) * 0.4
    x[frames // 2 :] *= 0.02
    return x


def test_shipped_presets_load_and_process():
    shipped = cp.shipped_presets()
    assert {p.stem for p in shipped} >= {"mic_cleanup", "beatbox_punch", "preview_room"}
    for path in shipped:
        chain = Chain()
        preset = cp.load_chain_preset(chain, path)
        assert preset.name and len(chain.members()) == len(preset.members) >= 2
        y = chain.process(signal())
        assert y.shape == (8192, 2) and np.isfinite(y).all() and np.abs(y).max() > 1e-3
    chain = Chain()
    cp.load_chain_preset(chain, cp.SHIPPED_DIR / "mic_cleanup.json")
    assert [m.effect for m in chain.members()] == ["HighpassFilter", "NoiseGate", "Compressor"]


def test_builtin_chain_round_trips(tmp_path):
    a = Chain()
    a.add_effect("HighpassFilter", {"cutoff_frequency_hz": 120.0})
    rid = a.add_effect("Reverb", {"room_size": 0.7})
    a.set_bypass(rid, True)
    path = cp.save_chain_preset(a, tmp_path / "mine.json")
    b = Chain()
    cp.load_chain_preset(b, path)
    assert [(m.effect, m.bypassed) for m in b.members()] == [("HighpassFilter", False), ("Reverb", True)]
    assert b.get_parameter(b.members()[0].id, "cutoff_frequency_hz") == pytest.approx(120.0)
    x = signal()
    np.testing.assert_array_equal(a.process(x), b.process(x))


@needs_zam
def test_vst3_state_round_trips_through_a_preset_file(scanner, tmp_path):
    a = Chain(scanner=scanner)
    mid = a.add_vst3(str(ZAMCOMP))
    a.set_parameter(mid, "threshold_db", -36.0)
    a.set_parameter(mid, "ratio", 10.0)
    # No block processed since the change: saving must flush it into raw_state.
    path = cp.save_chain_preset(a, tmp_path / "comp.json")
    doc = json.loads(path.read_text())
    assert doc["members"][0]["type"] == "vst3" and doc["members"][0]["path"] == str(ZAMCOMP.resolve())
    b = Chain(scanner=scanner)
    cp.load_chain_preset(b, path)
    bid = b.members()[0].id
    # The plugin snaps values to its own steps (10.0 reads back as 10.006).
    for name, value in (("threshold_db", -36.0), ("ratio", 10.0)):
        assert b.get_parameter(bid, name) == pytest.approx(value, abs=0.01)
        assert b.get_parameter(bid, name) == a.get_parameter(mid, name)
    fresh = Chain(scanner=scanner)
    fresh.add_vst3(str(ZAMCOMP))
    x = signal()
    ya = a.process(x)
    yb = b.process(x)
    np.testing.assert_allclose(yb, ya, rtol=0, atol=1e-6)
    assert np.abs(fresh.process(x) - yb).max() > 1e-3  # the saved settings really matter


def write(tmp_path, doc, name="p.json"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def preset(*members):
    return {"format": "samplescout-chain", "version": 1, "name": "t", "members": list(members)}


GAIN = {"type": "builtin", "effect": "Gain", "params": {"gain_db": -3.0}}


@pytest.mark.parametrize(
    "doc, error, message",
    [
        ("{not json", cp.PresetSyntaxError, "not valid JSON"),
        ('{"members": [NaN]}', cp.PresetSyntaxError, "NaN is not allowed"),
        ("[]", cp.PresetSchemaError, "preset must be dict"),
        ({"format": "other", "version": 1, "members": []}, cp.PresetSchemaError, "format must be"),
        ({"format": "samplescout-chain", "version": 99, "members": []}, cp.PresetSchemaError, "version 99"),
        ({"format": "samplescout-chain", "version": 1}, cp.PresetSchemaError, "missing field"),
        (preset(GAIN) | {"extra": 1}, cp.PresetSchemaError, "unknown field"),
        (preset({"type": "builtin", "effect": "Fuzz"}), cp.UnknownEffectError, "unknown effect 'Fuzz'"),
        (preset({"type": "builtin", "effect": "Gain", "params": {"gain_db": 99.0}}), cp.ParameterRangeError, "outside"),
        (preset({"type": "builtin", "effect": "Gain", "params": {"drive": 1.0}}), cp.ParameterRangeError, "no parameter"),
        (preset({"type": "builtin", "effect": "Gain", "params": {"gain_db": "-3"}}), cp.PresetSchemaError, "must be a number"),
        (preset({"type": "builtin", "effect": 3}), cp.PresetSchemaError, "effect must be str"),
        (preset({"type": "builtin", "effect": "Gain", "bypass": "yes"}), cp.PresetSchemaError, "bypass must be bool"),
        (preset("Gain"), cp.PresetSchemaError, "member 0 must be dict"),
        (preset({"type": "lv2"}), cp.PresetSchemaError, "'builtin' or 'vst3'"),
        (preset({"type": "vst3", "path": "/tmp/Evil.vst3"}), cp.PresetPathError, "outside the allowed"),
        (preset({"type": "vst3", "path": "/usr/lib/vst3/../../../etc/passwd.vst3"}), cp.PresetPathError, "'..'"),
        (preset({"type": "vst3", "path": "/etc/passwd"}), cp.PresetPathError, "must end in .vst3"),
        (preset({"type": "vst3", "path": "ZamComp.vst3"}), cp.PresetPathError, "absolute"),
        (preset({"type": "vst3", "path": str(ZAMCOMP), "state": "!!!"}), cp.PresetSchemaError, "not valid base64"),
        (preset({"type": "vst3", "path": str(ZAMCOMP),
                 "state": base64.b64encode(b"\0" * (cp.STATE_LIMIT + 1)).decode()}),
         cp.StateTooLargeError, "larger than"),
    ],
)
def test_malformed_presets_give_specific_errors(tmp_path, scanner, doc, error, message):
    path = write(tmp_path, doc)
    chain = Chain(scanner=scanner)
    chain.add_effect("Invert")
    before = chain.members()
    with pytest.raises(error, match=message) as info:
        cp.load_chain_preset(chain, path)
    assert isinstance(info.value, cp.PresetError) and "p.json" in str(info.value)
    assert chain.members() == before  # a failed load leaves the chain as it was


def test_oversized_and_binary_files_are_refused(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (cp.FILE_LIMIT + 10))
    with pytest.raises(cp.PresetSyntaxError, match="larger than"):
        cp.read_preset(big)
    binary = tmp_path / "pickle.json"
    binary.write_bytes(b"\x80\x04\x95\x00\xff")
    with pytest.raises(cp.PresetSyntaxError, match="UTF-8"):
        cp.read_preset(binary)
    with pytest.raises(cp.PresetError, match="cannot read"):
        cp.read_preset(tmp_path / "missing.json")


@needs_zam
def test_hanging_plugin_in_preset_is_reported(tmp_path):
    verb = VST3_DIR / "ZamVerb.vst3"
    if not verb.exists():
        missing_part("ZamVerb not installed")
    scanner = PluginScanner(extra_paths=[VST3_DIR], cache_dir=tmp_path / "c", timeout=3.0, include_standard=False)
    chain = Chain(scanner=scanner)
    with pytest.raises(cp.PresetPluginError, match="within 3 s"):
        cp.load_chain_preset(chain, write(tmp_path, preset({"type": "vst3", "path": str(verb)})))
    assert chain.members() == []
