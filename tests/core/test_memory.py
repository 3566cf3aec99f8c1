import ctypes
import ctypes.util
import sys
from pathlib import Path

import pytest

from core.memory import fix_mmap_threshold, limit_arenas, release_free_memory

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


def test_blocks_past_a_fixed_mmap_threshold_go_back_when_freed():
    """Once a 20 MB block has been freed, glibc's sliding threshold carves the next ones from the heap, where
    they stay resident below a block still in use (100 MB here); a fixed 1 MiB threshold gives each its own
    pages, returned when freed."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    assert not fix_mmap_threshold(0)  # 0: glibc's own, nothing applied
    assert fix_mmap_threshold(1024 * 1024)
    before = resident_mb()
    libc.free(libc.malloc(20 << 20))  # what slides glibc's own threshold up to 20 MB
    blocks = [libc.malloc(20 << 20) for _ in range(5)]
    pinned = libc.malloc(4096)  # in use above them
    for block in blocks:
        libc.memset(block, 1, 20 << 20)
    for block in blocks:
        libc.free(block)
    assert resident_mb() - before < 20
    libc.free(pinned)
