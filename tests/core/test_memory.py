import ctypes
import ctypes.util
import sys
from pathlib import Path

import pytest

from core.memory import limit_arenas, release_free_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator")


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_arena_limit_is_applied():
    assert limit_arenas(8)  # glibc's own default for this machine's size: applying it changes nothing else


def test_freed_heap_pages_go_back_to_the_system():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 200 MB of small blocks, all freed but the last: the block at the heap's top keeps glibc from trimming
    # by itself, so the freed pages stay resident until they are released.
    blocks = [libc.malloc(4096) for _ in range(50_000)]
    for block in blocks:
        ctypes.memset(block, 1, 4096)
    for block in blocks[:-1]:
        libc.free(block)
    before = resident_mb()
    release_free_memory()
    after = resident_mb()
    libc.free(blocks[-1])
    assert before - after > 100, (before, after)
