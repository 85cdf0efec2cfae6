"""Checking a region of an open index file after the index is in use.

A compact index keeps its exact rows (three quarters of a gigabyte at a million vectors) on
disk and reads the few a search needs. Checking their CRC-32 before the first search would
add a second or so to start-up, so ``app.index`` checks every other region while it loads
and hands this one to a ``RegionCheck``, which reads it on a thread of its own once start-up
has had its head start. The whole file's checksum is still verified at load:
``crc32_combine`` stands the region's stored CRC in for its bytes.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from app.hnsw_state import read_checked

log = logging.getLogger(__name__)

_POLY = 0xEDB88320            # CRC-32 (zlib's), reflected
# One read and one CRC (each without the GIL) per chunk; the check runs beside searches,
# after start-up, so a smaller buffer (less resident memory) costs little.
_CHUNK_BYTES = 16 << 20


def _apply(operator: list[int], crc: int) -> int:
    """The GF(2) 32x32 matrix ``operator`` (its columns) times the vector ``crc``."""
    out, column = 0, 0
    while crc:
        if crc & 1:
            out ^= operator[column]
        crc >>= 1
        column += 1
    return out


def _squared(operator: list[int]) -> list[int]:
    return [_apply(operator, column) for column in operator]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from ``crc1`` = CRC-32(A), ``crc2`` = CRC-32(B) and ``len2`` =
    len(B), without B: appending a byte to A's register is a linear operator over GF(2), so
    appending ``len2`` zero bytes is that operator raised to ``len2`` (by squaring), and
    B's own CRC adds to the result. Any thread."""
    if len2 <= 0:
        return crc1 & 0xFFFFFFFF
    one_bit = [_POLY] + [1 << i for i in range(31)]    # the register shifted by a zero bit
    operator = _squared(_squared(_squared(one_bit)))    # by a zero byte
    crc1 &= 0xFFFFFFFF
    while len2:
        if len2 & 1:
            crc1 = _apply(operator, crc1)
        len2 >>= 1
        if len2:
            operator = _squared(operator)
    return (crc1 ^ crc2) & 0xFFFFFFFF


class RegionCheck:
    """The CRC-32 of a region of ``length`` bytes, read through ``read_into(buffer, at)``
    (bytes from byte ``at`` of the region; ``FileRows.read_bytes_into``), compared with
    ``expected`` on a daemon thread that starts after ``delay_s``. ``on_damage(message)``
    runs on that thread when they differ. With ``into`` (``length`` bytes) the region is
    read into it, not into a reused buffer, and ``on_intact()`` runs on that thread once it
    is there and checked: a load hands the region's reading to the thread this way.
    Public methods: any thread."""

    def __init__(self, read_into: Callable[[memoryview, int], int], length: int, expected: int,
                 *, what: str, delay_s: float = 0.0,
                 on_damage: Callable[[str], None] | None = None,
                 into: memoryview | None = None,
                 on_intact: Callable[[], None] | None = None) -> None:
        if into is not None and len(into) != length:
            raise ValueError(f"a buffer of {len(into)} bytes for a region of {length}")
        self._read_into = read_into
        self._into, self._on_intact = into, on_intact
        self._length, self._expected = int(length), int(expected)
        self._what = what
        self._delay_s = delay_s
        self._on_damage = on_damage
        self._stop = threading.Event()
        self._done = threading.Event()
        self._damage: str | None = None
        self._thread = threading.Thread(target=self._run, name="index-check", daemon=True)
        self._thread.start()

    @property
    def damage(self) -> str | None:
        """What the check found wrong; None while it runs, and when the region is intact."""
        return self._damage

    def result(self) -> str | None:
        """Wait for the check (starting it now if it still waits out its delay); the damage
        found, None when intact."""
        self._stop.set()       # ends the delay; the reading does not look at it
        self._done.wait()
        return self._damage

    def _run(self) -> None:
        try:
            self._stop.wait(self._delay_s)
            self._damage = self._check()
            if self._damage is None and self._on_intact is not None:
                self._on_intact()
        except OSError as exc:
            self._damage = f"{self._what} could not be read to check them: {exc}"
        finally:
            self._done.set()
        if self._damage is not None:
            log.error("%s", self._damage)
            if self._on_damage is not None:
                self._on_damage(self._damage)

    def _check(self) -> str | None:
        buffer = (memoryview(bytearray(min(self._length, _CHUNK_BYTES))) if self._into is None
                  else self._into[:_CHUNK_BYTES])
        at = 0

        def read_into(view: memoryview) -> int:
            nonlocal at
            got = self._read_into(view, at)
            at += got
            return got
        crc = 0
        try:
            while at < self._length:
                if self._into is not None:
                    buffer = self._into[at:at + _CHUNK_BYTES]
                crc = read_checked(read_into, buffer[:min(self._length - at, len(buffer))], crc)
        except EOFError:
            return f"{self._what} are truncated ({at} of {self._length} bytes)"
        if crc & 0xFFFFFFFF != self._expected:
            return f"{self._what} fail their checksum: the index file is damaged"
        return None
