"""The C allocator's side of resident memory. Request threads allocate large, short-lived buffers (decoded images,
network activations); glibc gives each thread its own arena and keeps freed pages, so a long-running service's
resident memory creeps up with no leak (bench/soak.py; docs/performance.md, "Memory"). Fewer
arenas and a periodic trim give the pages back. Elsewhere than glibc both are no-ops."""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


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
