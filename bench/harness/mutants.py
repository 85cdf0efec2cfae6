"""Mutants of real audio files, and a decoder run over them in a capped child process.

`make_mutants` damages real Debian samples the way fuzzers and bad disks do: flipped
header bytes, huge chunk sizes, implausible sample rates, channel and frame counts,
truncation, overwritten stretches. Ogg pages get their CRC recomputed so the damage
reaches the decoder instead of stopping at the checksum.

`decode_all` decodes each file (``probe`` then ``iter_mono`` to the end) in a child process
under an address-space cap, one file at a time with a deadline each, and says for every
file: ``ok``, ``handled`` (a DecodeError with its code), ``traceback`` (anything else) or
``hang``, plus the child's peak resident memory. `scan_twice_capped` scans a folder
twice with the real scanner (worker processes included) under a cap. Used by the fuzz
test and ``bench/robustness.py``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

from bench.harness.live_support import HYDROGEN, LMMS, SONIC_PI

REPO = Path(__file__).resolve().parents[2]

# Small real files, one or more per format the scanner reads (Debian has no MP3: one is
# written with libsndfile's LAME encoder).
SEED_FILES = {
    "wav": HYDROGEN / "Audiophob" / "99931__menegass__noise-tom1.wav",
    "aiff": HYDROGEN / "BJA_Pacific" / "HH_01.aiff",
    "flac": HYDROGEN / "ElectricEmpireKit" / "EE_Kick_Low_1.flac",
    "flac_sonic_pi": SONIC_PI / "elec_hollow_kick.flac",
    "ogg": LMMS / "effects" / "stop01.ogg",
    "vorbis_in_wav": LMMS / "effects" / "scratch01.ogg",
}
IMPLAUSIBLE_RATES = (0, 1, 2, 10, 999, 768001, 10_000_000, 0xFFFFF, 0xFFFFFFFF)
STARTUP_S = 60.0
HUGE_SIZES = (0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF, 0x10000000)
MUTATIONS = ("flip_header", "huge_chunk", "rate", "channels", "frames", "truncate", "overwrite")


def seed_files(scratch: Path) -> dict[str, Path]:
    """The seeds that exist here, and a fresh MP3 written into ``scratch``."""
    seeds = {name: path for name, path in SEED_FILES.items() if path.exists()}
    seeds["mp3"] = _write_mp3_tone(scratch / "tone.mp3")
    return seeds


def _write_mp3_tone(path: Path) -> Path:
    """One second of a decaying 440 Hz tone as MP3 (Debian's sample packages hold no MP3)."""
    import numpy as np
    import soundfile as sf

    t = np.arange(44100) / 44100
    tone = (0.5 * np.exp(-3 * t) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone, 44100, format="MP3", subtype="MPEG_LAYER_III")
    return path


def make_mutants(seeds: dict[str, Path], count: int, out_dir: Path, seed: int = 0) -> list[Path]:
    """Write ``count`` mutants (cycling through seeds and mutations) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sources = {name: path.read_bytes() for name, path in sorted(seeds.items())}
    names = list(sources)
    paths = []
    for i in range(count):
        name = names[i % len(names)]
        mutation = MUTATIONS[(i // len(names)) % len(MUTATIONS)]
        data = mutate(sources[name], mutation, rng)
        path = out_dir / f"{i:05d}_{name}_{mutation}{seeds[name].suffix}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def mutate(raw: bytes, mutation: str, rng: random.Random) -> bytes:
    data = bytearray(raw)
    if mutation == "flip_header":
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(min(len(data), 128))
            data[at] ^= 1 << rng.randrange(8)
        return _fix_ogg_crcs(data)
    if mutation == "truncate":
        cut = rng.choice([rng.randrange(1, 200), rng.randrange(1, len(data))])
        return bytes(data[:cut])
    if mutation == "overwrite":
        at = rng.randrange(len(data))
        n = rng.randint(1, 512)
        data[at:at + n] = rng.choice([bytes(n), b"\xff" * n, rng.randbytes(n)])
        return _fix_ogg_crcs(data)
    field = _FIELDS[mutation]
    if not field(data, rng):
        data[rng.randrange(min(len(data), 64))] ^= 0xFF  # no such field: flip a header byte
    return _fix_ogg_crcs(data)


# -- format fields ---------------------------------------------------------------------------


def _riff_chunk(data: bytearray, chunk_id: bytes) -> int | None:
    if data[:4] != b"RIFF":
        return None
    pos = 12
    while pos + 8 <= len(data):
        if data[pos:pos + 4] == chunk_id:
            return pos
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        pos += 8 + size + (size & 1)
    return None


def _aiff_comm(data: bytearray) -> int | None:
    at = data.find(b"COMM")
    return at if data[:4] == b"FORM" and at >= 0 else None


def _vorbis_id(data: bytearray) -> int | None:
    at = data.find(b"\x01vorbis")
    return at if at >= 0 else None


def _flac_streaminfo(data: bytearray) -> int | None:
    return 18 if data[:4] == b"fLaC" and len(data) >= 26 else None


def _set_bits(data: bytearray, at: int, nbytes: int, shift: int, width: int, value: int) -> None:
    packed = int.from_bytes(data[at:at + nbytes], "big")
    mask = ((1 << width) - 1) << shift
    packed = (packed & ~mask) | ((value & ((1 << width) - 1)) << shift)
    data[at:at + nbytes] = packed.to_bytes(nbytes, "big")


def _ext80(rate: int) -> bytes:
    if rate <= 0:
        return bytes(10)
    exponent = rate.bit_length() - 1
    return struct.pack(">HQ", 16383 + exponent, rate << (63 - exponent))


def _rate(data: bytearray, rng: random.Random) -> bool:
    rate = rng.choice(IMPLAUSIBLE_RATES)
    if (at := _riff_chunk(data, b"fmt ")) is not None:
        data[at + 12:at + 16] = struct.pack("<I", rate)
    elif (at := _aiff_comm(data)) is not None:
        data[at + 16:at + 26] = _ext80(rate)
    elif (at := _flac_streaminfo(data)) is not None:
        _set_bits(data, at, 8, 44, 20, rate)
    elif (at := _vorbis_id(data)) is not None:
        data[at + 12:at + 16] = struct.pack("<I", rate)
    else:
        return False
    return True


def _channels(data: bytearray, rng: random.Random) -> bool:
    channels = rng.choice((0, 65, 255, 1024, 32767, 65535))
    if (at := _riff_chunk(data, b"fmt ")) is not None:
        data[at + 10:at + 12] = struct.pack("<H", channels)
    elif (at := _aiff_comm(data)) is not None:
        data[at + 8:at + 10] = struct.pack(">H", channels)
    elif (at := _flac_streaminfo(data)) is not None:
        _set_bits(data, at, 8, 41, 3, rng.randrange(8))
    elif (at := _vorbis_id(data)) is not None:
        data[at + 11] = channels & 0xFF
    else:
        return False
    return True


def _frames(data: bytearray, rng: random.Random) -> bool:
    if (at := _aiff_comm(data)) is not None:
        data[at + 10:at + 14] = struct.pack(">I", rng.choice(HUGE_SIZES))
    elif (at := _flac_streaminfo(data)) is not None:
        _set_bits(data, at, 8, 0, 36, rng.choice(((1 << 36) - 1, 1 << 35, 10**9)))
    elif (at := _riff_chunk(data, b"fact")) is not None:
        data[at + 8:at + 12] = struct.pack("<I", rng.choice(HUGE_SIZES))
    elif (at := _riff_chunk(data, b"data")) is not None:
        data[at + 4:at + 8] = struct.pack("<I", rng.choice(HUGE_SIZES))
    else:
        return False
    return True


def _huge_chunk(data: bytearray, rng: random.Random) -> bool:
    size = rng.choice(HUGE_SIZES)
    if data[:4] == b"RIFF":
        chunks, pos = [4], 12
        while pos + 8 <= len(data):
            chunks.append(pos + 4)
            (n,) = struct.unpack("<I", data[pos + 4:pos + 8])
            pos += 8 + n + (n & 1)
        at = rng.choice(chunks)
        data[at:at + 4] = struct.pack("<I", size)
    elif data[:4] == b"FORM":
        at = rng.choice([4] + [i + 4 for i in (data.find(b"COMM"), data.find(b"SSND")) if i >= 0])
        data[at:at + 4] = struct.pack(">I", size)
    elif data[:4] == b"fLaC":
        data[5:8] = b"\xff\xff\xff"  # first metadata block's length
    elif data[:4] == b"OggS":
        segments = data[26]
        data[27 + rng.randrange(max(1, segments))] = 0xFF
    else:
        return False
    return True


_FIELDS = {"rate": _rate, "channels": _channels, "frames": _frames, "huge_chunk": _huge_chunk}


# -- Ogg page checksums ---------------------------------------------------------------------


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _fix_ogg_crcs(data: bytearray) -> bytes:
    at = data.find(b"OggS")
    while 0 <= at and at + 27 <= len(data):
        segments = data[at + 26]
        end = at + 27 + segments
        if end > len(data):
            break
        end += sum(data[at + 27:end])
        page = bytearray(data[at:min(end, len(data))])
        page[22:26] = bytes(4)
        crc = 0
        for b in page:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[(crc >> 24) ^ b]
        data[at + 22:at + 26] = struct.pack("<I", crc)
        at = data.find(b"OggS", at + 4)
    return bytes(data)


def own_peak_rss() -> int:
    """This process's peak resident memory in bytes since its exec (VmHWM). Not ru_maxrss:
    Linux keeps that across exec, so a child forked from a large test process would report
    its parent's size. Any thread."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- scanning in a capped child ---------------------------------------------------------------

SCAN_MEMORY_CAP = 3 << 30  # address space of a scan: workers and encoder fit, bombs don't


def _capped_python(code: str, timeout: float, memory_cap: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (and its worker processes) under ``memory_cap``."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))

    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit)


_SCAN_TWICE = """
import json, resource, sys
from app.library import Library
from app.scanner import Scanner
reports = []
with Library({library!r}) as library:
    for _ in range(2):
        r = Scanner(library, workers=2).scan([{root!r}])
        reports.append(dict(seen=r.seen, unchanged=r.unchanged, analysed=r.files_analysed,
                            indexed=r.indexed, skipped=dict(r.skipped), problems=r.problems))
    stats = library.catalog.stats()
    reasons, indexed = stats["skipped_by_reason"], stats["indexed"]
from bench.harness.mutants import own_peak_rss
peak = max(own_peak_rss(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
print(json.dumps(dict(reports=reports, reasons=reasons, indexed=indexed, peak_rss=peak)))
"""


def scan_twice_capped(root: Path, library_dir: Path, timeout: float = 240.0,
                      memory_cap: int = SCAN_MEMORY_CAP) -> dict:
    """Scan ``root`` into ``library_dir`` twice (2 workers) in a child under ``memory_cap``:
    both reports, the catalog's skip reasons and the peak resident memory of the child and
    its workers. Raises AssertionError with the child's stderr if it fails or prints a
    traceback. Main thread."""
    done = _capped_python(_SCAN_TWICE.format(library=str(library_dir), root=str(root)), timeout,
                          memory_cap)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- decoding in a capped child ---------------------------------------------------------------


def decode_all(paths: list[Path], memory_cap: int, timeout_s: float = 20.0) -> dict:
    """Decode every file in a child process limited to ``memory_cap`` bytes of address space.

    Returns {"results": {path: (outcome, detail)}, "peak_rss": bytes}. A file that takes
    longer than ``timeout_s`` is a ``hang``: the child is killed and a new one goes on with
    the next file. Main thread.
    """
    results: dict[str, tuple[str, str]] = {}
    peak = 0
    todo = [os.fspath(p) for p in paths]
    while todo:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.harness.mutants", str(memory_cap)], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        proc.stdin.write("\n".join(todo) + "\n")
        proc.stdin.close()
        try:
            current, peak, timed_out = _collect(proc, results, peak, timeout_s)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        if current is not None and current not in results:  # hung or died on this file
            results[current] = (("hang", f"no answer within {timeout_s:g} s") if timed_out
                                else ("traceback", f"child died (exit status {proc.returncode})"))
        left = [p for p in todo if p not in results]
        if len(left) == len(todo):  # the child never got going: no use starting another
            results.update((p, ("traceback", f"child failed (exit status {proc.returncode})"))
                           for p in left)
            left = []
        todo = left
    return {"results": results, "peak_rss": peak}


def _collect(proc, results, peak, timeout_s):
    """Read the child's events into ``results``: (file in progress, peak, timed out)."""
    import selectors

    current = None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s + STARTUP_S  # imports come first
    buffer = ""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            proc.kill()
            return current, peak, True
        if not selector.select(timeout=left):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536).decode()
        if not chunk:
            return current, peak, False
        buffer += chunk
        *lines, buffer = buffer.split("\n")
        for line in lines:
            message = json.loads(line)
            if "start" in message:
                current = message["start"]
                deadline = time.monotonic() + timeout_s
            elif "path" in message:
                results[message["path"]] = (message["outcome"], message["detail"])
                current = None
            elif "peak_rss" in message:
                peak = max(peak, message["peak_rss"])


def _child(memory_cap: int) -> None:
    """Child side: decode each path read from stdin, one JSON line per event."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
    import traceback

    from app.decode import DecodeError, iter_mono, probe

    def say(**message):
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    for path in sys.stdin.read().split("\n"):
        if not path:
            continue
        say(start=path)
        try:
            probe(path)
            frames = sum(len(chunk) for chunk in iter_mono(path, 44100))
            outcome, detail = "ok", f"{frames} frames"
        except DecodeError as exc:
            outcome, detail = "handled", exc.code
        except BaseException as exc:  # noqa: BLE001 — what the campaign looks for
            outcome = "traceback"
            detail = f"{type(exc).__name__}: {exc} | " + traceback.format_exc(limit=-3)
        say(path=path, outcome=outcome, detail=detail)
    say(peak_rss=own_peak_rss())


if __name__ == "__main__":
    _child(int(sys.argv[1]))
