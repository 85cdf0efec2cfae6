"""Pre-processing recipe of the encoder: onset gate, per-block level, blocking.

The whole recipe lives here (numpy only) so that the runtime encoder and the
quantisation calibration of the export script see exactly the same inputs.

Recipe, for mono audio at 44.1 kHz:

1. Leading silence is trimmed by an onset gate. The level gate opens at the first
   sample at which the mean square level of the last 1 ms (44 samples, zeros before
   the signal) reaches -60 dBFS. The gate then looks ``GATE_LOOKAHEAD`` (200 ms)
   ahead, and every threshold from here on is relative to the loudest 1 ms in that
   look-ahead, so the start does not move with the input's gain:
   - the start is the first 1 ms within ``GATE_RELATIVE_DB`` (30 dB) of the loudest;
   - a lead-in of noise (room tone, hiss) within 30 dB of the sound is skipped: when,
     at least 20 ms after the start, the 1 ms level rises ``GATE_RISE_DB`` (15 dB)
     above the mean level of the first 10 ms, and the lead-in held its level up to
     there (every 10 ms within ``GATE_STEADY_DB`` (6 dB) of the first), the start
     moves to that rise. A sound that starts and decays, a slow attack, or a ghost
     note before an accent keeps its start.
   The 5 ms (220 samples) before the start are kept. Tails are never trimmed. The
   gate streams; it holds at most 200 ms back.
   A quiet clip whose level never reaches -60 dBFS (a soft take, a tail, a distant mic)
   is not dropped: at the end of the clip, if its peak is at least -80 dBFS, its first
   ``GATE_QUIET_KEEP`` (30 s) samples are gated as if raised so that their loudest 1 ms
   sits at -30 dBFS, which puts the level gate 30 dB below that loudest 1 ms.
2. The trimmed audio goes through the log-mel front-end (``models.frontend``) as
   linear power mel frames (frame ``k`` starts at trimmed sample ``k*1024``).
3. Blocks of ``BLOCK_FRAMES`` = 100 frames with a hop of ``HOP_FRAMES`` = 50.
   A block starting at frame ``s`` covers trimmed samples
   ``[(s-1)*1024, (s+100)*1024)`` (clipped to the signal). Its power mel is
   multiplied by ``gain**2`` with ``gain = 10**(-40/20) / peak``, ``peak`` being the
   largest absolute sample the block covers, then ``log10(1e4*x + 1) / 9.4578``.
   A block whose peak is below -80 dBFS gives no embedding.
4. End of clip: when fewer than ``MIN_FRAMES`` = 8 frames exist, the audio is
   zero-padded to ``(MIN_FRAMES-1)*1024`` samples first (8 frames). The last partial
   block (starting one hop after the last full block, or at frame 0 if no full block
   exists) is emitted only if it covers frames that no full block covered; its
   missing frames are filled with 0.0 (the log of zero power).

Instances are not thread-safe: one thread at a time per instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import frontend

MODEL_SAMPLE_RATE = frontend.SAMPLE_RATE
BLOCK_FRAMES = 100
HOP_FRAMES = 50
MIN_FRAMES = 8

GATE_THRESHOLD_DB = -60.0
GATE_WINDOW = 44            # 1 ms at 44.1 kHz
GATE_PRE_ROLL = 220         # 5 ms kept before the onset
GATE_FLOOR = 441            # 10 ms after the level gate opens: the lead-in's level
GATE_LOOKAHEAD = 8820       # 200 ms after it: how far a rise out of a noise lead-in is sought
GATE_RISE_DB = 15.0
GATE_STEADY_DB = 6.0        # a noise lead-in stays within this of its first 10 ms
GATE_RELATIVE_DB = 30.0     # the start: first 1 ms within this of the look-ahead's loudest
GATE_QUIET_KEEP = 30 * 44100  # how much of a clip that stays below the level gate is kept
RECIPE_VERSION = 4          # 1: level gate only; 2: noise lead-in rule; 3: relative thresholds;
                            # 4: quiet clips gated relative to their loudest 1 ms
TARGET_PEAK_DB = -40.0
SILENCE_PEAK_DB = -80.0

_GATE_MEAN_SQUARE = 10.0 ** (GATE_THRESHOLD_DB / 10.0)
_TARGET_PEAK = 10.0 ** (TARGET_PEAK_DB / 20.0)
_SILENCE_PEAK = 10.0 ** (SILENCE_PEAK_DB / 20.0)


def as_mono_float(audio: np.ndarray) -> np.ndarray:
    """Validate one chunk of mono audio and return it as float64; ValueError if unusable."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio as a 1-D array, got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"expected floating-point samples, got dtype {audio.dtype}")
    audio = audio.astype(np.float64, copy=False)
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")
    return audio


def _window_levels(x: np.ndarray, x_start: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squares over every GATE_WINDOW samples of ``x`` (input index ``x_start`` onwards,
    zeros before the signal start) and the input index each window ends at. The fixed
    summation order makes the result independent of how the input was chunked."""
    n_zeros = max(0, GATE_WINDOW - 1 - x_start)
    squares = np.concatenate([np.zeros(n_zeros), x * x])
    n_windows = squares.size - GATE_WINDOW + 1
    sums = np.zeros(max(n_windows, 0))
    for k in range(GATE_WINDOW):
        sums += squares[k:k + n_windows]
    ends = x_start + np.arange(sums.size) + GATE_WINDOW - 1 - n_zeros
    return sums, ends


class OnsetGate:
    """Drops input until the onset (see module docstring), then passes everything.

    States: closed (no sample has reached the level gate yet), deciding (the level
    gate opened at ``_level_onset``; input is held until the look-ahead is complete)
    and open.
    """

    def __init__(self) -> None:
        self._history = np.zeros(0, dtype=np.float64)   # closed: last samples; deciding: held input
        self._quiet: list[np.ndarray] = []               # closed: the input so far, up to GATE_QUIET_KEEP
        self._quiet_size = 0
        self._history_start = 0                          # input index of _history[0]
        self._n_seen = 0
        self._level_onset: int | None = None
        self.is_open = False
        self.offset = 0          # input samples dropped before the first one passed

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Return the part of ``audio`` (with any kept pre-roll) that passes the gate."""
        if self.is_open or audio.size == 0:
            return audio
        x = np.concatenate([self._history, audio])
        x_start = self._history_start
        self._n_seen += audio.size
        if self._level_onset is None:
            onset = self._find_level_onset(x, x_start, first_new=self._n_seen - audio.size)
            if onset is None and self._quiet_size < GATE_QUIET_KEEP:
                part = audio[:GATE_QUIET_KEEP - self._quiet_size].copy()
                self._quiet.append(part)
                self._quiet_size += part.size
            elif onset is not None:
                self._quiet, self._quiet_size = [], 0
            if onset is None:
                keep = x[-(GATE_PRE_ROLL + GATE_WINDOW):]
                self._history, self._history_start = keep.copy(), self._n_seen - keep.size
                return audio[:0]
            self._level_onset = onset
            cut = max(x_start, onset - GATE_PRE_ROLL - GATE_WINDOW)
            x, x_start = x[cut - x_start:], cut
        if self._n_seen < self._level_onset + GATE_LOOKAHEAD:
            self._history, self._history_start = x.copy(), x_start
            return audio[:0]
        return self._open(x, x_start)

    def finish(self) -> np.ndarray:
        """End of input: decide with what is held and return it (empty for silence)."""
        if self.is_open:
            return np.zeros(0, dtype=np.float64)
        if self._level_onset is None:
            return self._open_quiet()
        return self._open(self._history, self._history_start)

    def _open_quiet(self) -> np.ndarray:
        """The level gate never opened: open it 30 dB below the loudest 1 ms of the kept start
        (where it would open had the clip been raised to put that 1 ms at -30 dBFS); the
        look-ahead rules are relative already, so they apply unchanged."""
        held = np.concatenate(self._quiet) if self._quiet else np.zeros(0, dtype=np.float64)
        self._quiet, self._quiet_size = [], 0
        if held.size == 0 or float(np.max(np.abs(held))) < _SILENCE_PEAK:
            return np.zeros(0, dtype=np.float64)
        sums, ends = _window_levels(held, 0)
        level = float(sums.max()) * 10.0 ** (-GATE_RELATIVE_DB / 10.0)
        self._level_onset = int(ends[np.flatnonzero(sums >= level)[0]])
        return self._open(held, 0)

    def _find_level_onset(self, x: np.ndarray, x_start: int, first_new: int) -> int | None:
        # zeros stand in for the samples before the signal start
        sums, ends = _window_levels(x, x_start)
        hits = np.flatnonzero((sums >= _GATE_MEAN_SQUARE * GATE_WINDOW) & (ends >= first_new))
        return int(ends[hits[0]]) if hits.size else None

    def _rise_onset(self, x: np.ndarray, x_start: int) -> int:
        """Where the sound starts, looking ``GATE_LOOKAHEAD`` past the level gate.

        Every threshold here is relative to the loudest 1 ms of the look-ahead, so the
        decision does not change with the input's gain (only the -60 dBFS gate does).
        """
        level_onset = self._level_onset
        sums, ends = _window_levels(x, x_start)
        ahead = (ends >= level_onset) & (ends < level_onset + GATE_LOOKAHEAD)
        if not ahead.any():
            return level_onset
        loudest = float(sums[ahead].max())
        anchor = int(ends[np.flatnonzero(ahead & (sums >= loudest * 10.0 ** (-GATE_RELATIVE_DB / 10.0)))[0]])
        floor_sel = (ends >= anchor) & (ends < anchor + GATE_FLOOR)
        search = (ends >= anchor + 2 * GATE_FLOOR) & (ends < level_onset + GATE_LOOKAHEAD)
        if not search.any():
            return anchor
        floor = float(np.mean(sums[floor_sel]))
        rises = np.flatnonzero(search & (sums >= floor * 10.0 ** (GATE_RISE_DB / 10.0)))
        if not rises.size:
            return anchor
        rise = int(ends[rises[0]])
        # a lead-in of noise holds its level up to the rise; a sound that began at the
        # anchor (a ghost note before an accent, a decaying hit, a slow attack) does not
        lead = sums[(ends >= anchor) & (ends < rise - GATE_WINDOW)]
        n_parts = lead.size // GATE_FLOOR
        if n_parts < 2:
            return anchor
        parts = lead[:n_parts * GATE_FLOOR].reshape(n_parts, GATE_FLOOR).mean(axis=1)
        limit = 10.0 ** (GATE_STEADY_DB / 10.0)
        if np.any(parts > floor * limit) or np.any(parts < floor / limit):
            return anchor
        return rise

    def _open(self, x: np.ndarray, x_start: int) -> np.ndarray:
        onset = self._rise_onset(x, x_start)
        start = max(0, onset - GATE_PRE_ROLL)
        self.is_open = True
        self.offset = start
        self._history = np.zeros(0, dtype=np.float64)
        return x[start - x_start:]


@dataclass(frozen=True)
class LogMelBlock:
    """One encoder input: ``log_mel`` (BLOCK_FRAMES, N_MELS) float32 and where it starts."""
    start_frame: int
    start_sample: int
    log_mel: np.ndarray


class BlockAssembler:
    """Streams audio into level-normalised log-mel blocks following the recipe above."""

    def __init__(self, *, trim_leading_silence: bool = True) -> None:
        self._trim = trim_leading_silence
        self._reset()

    def _reset(self) -> None:
        self._gate = OnsetGate() if self._trim else None
        self._mel = frontend.StreamingMel()
        self._frames: list[np.ndarray] = []      # power mel rows, from frame self._frame_base
        self._frame_base = 0
        self._n_frames = 0
        self._seg_peaks: list[float] = []         # peak of each hop segment, from self._seg_base
        self._seg_base = 0
        self._cur_peak = 0.0
        self._cur_fill = 0
        self._n_samples = 0
        self._next_start = 0
        self._covered_until = 0

    @property
    def _offset(self) -> int:
        return self._gate.offset if self._gate is not None else 0

    def _add_samples(self, audio: np.ndarray) -> None:
        hop = frontend.HOP_LENGTH
        self._n_samples += audio.size
        pos = 0
        if self._cur_fill:
            take = min(hop - self._cur_fill, audio.size)
            if take:
                self._cur_peak = max(self._cur_peak, float(np.max(np.abs(audio[:take]))))
            self._cur_fill += take
            pos = take
            if self._cur_fill == hop:
                self._seg_peaks.append(self._cur_peak)
                self._cur_peak, self._cur_fill = 0.0, 0
        n_full = (audio.size - pos) // hop
        if n_full:
            full = np.abs(audio[pos:pos + n_full * hop]).reshape(n_full, hop).max(axis=1)
            self._seg_peaks.extend(full.tolist())
            pos += n_full * hop
        if pos < audio.size:
            self._cur_peak = max(self._cur_peak, float(np.max(np.abs(audio[pos:]))))
            self._cur_fill += audio.size - pos
        frames = self._mel.push(audio)
        self._append_frames(frames)

    def _append_frames(self, frames: np.ndarray) -> None:
        if frames.shape[0]:
            self._frames.extend(frames)
            self._n_frames += frames.shape[0]

    def _block(self, start: int, stop: int) -> LogMelBlock | None:
        rows = np.asarray(self._frames[start - self._frame_base:stop - self._frame_base])
        first_seg = max(0, start - 1) - self._seg_base
        peaks = self._seg_peaks[first_seg:start + BLOCK_FRAMES - self._seg_base]
        peak = max(peaks) if peaks else 0.0
        if peak < _SILENCE_PEAK:
            return None
        gain = _TARGET_PEAK / peak
        log_mel = np.zeros((BLOCK_FRAMES, frontend.N_MELS), dtype=np.float32)
        log_mel[:rows.shape[0]] = frontend.log_compress(rows * (gain * gain))
        return LogMelBlock(start, self._offset + start * frontend.HOP_LENGTH, log_mel)

    def _emit_full_blocks(self) -> list[LogMelBlock]:
        out = []
        while self._next_start + BLOCK_FRAMES <= self._n_frames:
            block = self._block(self._next_start, self._next_start + BLOCK_FRAMES)
            if block is not None:
                out.append(block)
            self._covered_until = self._next_start + BLOCK_FRAMES
            self._next_start += HOP_FRAMES
        # forget what no later block can use
        drop = self._next_start - self._frame_base
        if drop > 0:
            del self._frames[:drop]
            self._frame_base += drop
        drop = max(0, self._next_start - 1) - self._seg_base
        if drop > 0:
            del self._seg_peaks[:drop]
            self._seg_base += drop
        return out

    def push(self, audio: np.ndarray) -> list[LogMelBlock]:
        """Add a chunk of mono samples (any size); return the blocks it completes."""
        audio = as_mono_float(audio)
        if self._gate is not None:
            audio = self._gate.push(audio)
        if audio.size == 0:
            return []
        self._add_samples(audio)
        return self._emit_full_blocks()

    def flush(self) -> list[LogMelBlock]:
        """End of clip: return the remaining blocks (see module docstring), then reset."""
        if self._gate is not None and not self._gate.is_open:
            held = self._gate.finish()
            if held.size:
                self._add_samples(held)
        if self._n_samples == 0:
            self._reset()
            return []
        min_samples = (MIN_FRAMES - 1) * frontend.HOP_LENGTH
        if self._n_samples < min_samples:
            self._add_samples(np.zeros(min_samples - self._n_samples))
        self._append_frames(self._mel.flush())
        if self._cur_fill:
            self._seg_peaks.append(self._cur_peak)
            self._cur_peak, self._cur_fill = 0.0, 0
        out = self._emit_full_blocks()
        if self._n_frames > self._covered_until:
            block = self._block(self._next_start, self._n_frames)
            if block is not None:
                out.append(block)
        self._reset()
        return out


def block_span(start_sample: int) -> slice:
    """The input samples a block starting at ``start_sample`` covers (step 3 of the recipe:
    one hop before its first frame to the end of its last), clipped at 0 but not at the
    clip's end."""
    return slice(max(0, start_sample - frontend.HOP_LENGTH), start_sample + BLOCK_FRAMES * frontend.HOP_LENGTH)


def clip_blocks(audio: np.ndarray, *, trim_leading_silence: bool = True) -> list[LogMelBlock]:
    """Offline convenience: all blocks of one whole clip."""
    assembler = BlockAssembler(trim_leading_silence=trim_leading_silence)
    return assembler.push(audio) + assembler.flush()
