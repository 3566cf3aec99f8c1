"""The C allocator's side of resident memory. Request threads allocate large, short-lived buffers (decoded images,
network activations); glibc gives each thread its own arena and keeps freed pages, so a long-running service's
resident memory creeps up with no leak (bench/soak.py; docs/performance.md, "Memory"). Fewer
arenas and a periodic trim give the pages back. Elsewhere than glibc both are no-ops."""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def limit_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas (default 8 per core); call before the request threads start. True if applied."""
    return bool(_LIBC and _LIBC.mallopt(M_ARENA_MAX, arenas) == 1)


def release_free_memory() -> None:
    """Hand freed heap pages of every arena back to the system."""
    if _LIBC:
        _LIBC.malloc_trim(0)


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Allocations of at least `threshold_bytes` get pages of their own (mmap), returned to the system when freed.
    glibc's default threshold starts at 128 KiB but rises to the size of each large block freed (up to 32 MiB), after
    which decoded photos and request bodies are carved from the arenas and their pages can stay resident; a fixed
    threshold stops that. 0 leaves glibc's sliding threshold. True if applied."""
    return bool(threshold_bytes and _LIBC and _LIBC.mallopt(M_MMAP_THRESHOLD, threshold_bytes) == 1)
