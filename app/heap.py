"""Giving freed heap memory back to the system after a burst of large temporaries.

glibc keeps what a program frees in its heaps for later allocations. After a search by
example (it re-ranks 40-80 blocks, about 85 MB of temporaries at a time) that memory stays
resident in the window's process for nothing; ``malloc_trim`` hands it back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim          # glibc only (musl has none)
    except (OSError, AttributeError):
        return None


def release_free_heap() -> bool:
    """Return the heaps' free memory to the system (a few milliseconds); False where the C
    library cannot (not glibc). Any thread."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
