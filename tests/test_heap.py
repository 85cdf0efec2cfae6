"""app.heap: freed heap memory goes back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import sys

import pytest

from app.heap import release_free_heap


def rss_anon_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux's")
def test_freed_heap_memory_is_given_back_to_the_system():
    # 64 KB blocks come from the heap (below glibc's mmap threshold); one kept block above
    # them stops free() from shrinking the heap's top by itself
    blocks = [bytearray(64 << 10) for _ in range(1024)]
    for block in blocks:
        block[::4096] = b"\x01" * len(block[::4096])          # touched: resident
    keep = bytearray(64 << 10)
    keep[0] = 1
    del blocks
    before = rss_anon_kb()
    assert release_free_heap()
    assert rss_anon_kb() < before - 32 * 1024, "the freed 64 MB stayed resident"
    assert keep[0] == 1
