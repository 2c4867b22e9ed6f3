"""Keep freed CPU memory in the process heap, so that tensors reuse warm pages.

Why: glibc hands out blocks above its mmap threshold (128 KiB at start, adjusted up to
32 MiB) as fresh pages and returns them to the kernel when freed; the heap's top is
returned too once more than the trim threshold lies free there. Every new page is then
zeroed and faulted in on first touch. The model allocates and frees per-edge tensors of a
few MB in every block (E edges x 96 channels, E ~ 10,000 for a 7 Å crop), so inference
paid thousands of page faults per pass: one gather, multiply and scatter of 10,600 edges
took 8.9 ms instead of 0.75 ms on the 2-core machine, and the shipped Cu ensemble
predicted Cu2O about 1.5-2x slower than with the heap kept (benchmarks/inference.py).

The price is that a process keeps up to :data:`TRIM_THRESHOLD_BYTES` of freed memory
instead of giving it back. Only glibc (Linux) is tuned; elsewhere this does nothing.
Set ``XANES_KEEP_HEAP=0`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's own upper bound for the threshold on 64-bit
TRIM_THRESHOLD_BYTES = 512 << 20

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when applied."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or os.environ.get("XANES_KEEP_HEAP", "1") == "0":
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others without mallopt
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _done
