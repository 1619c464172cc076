"""One BLAS thread for the compiler's own numpy work.

A compiled model is run one sequence (or a small batch) at a time, and the matrices
the compiler builds are thin slices of big arrays: OpenBLAS's worker threads cost more
than they give there, and on a machine that is busy with anything else they stall.
Measured on a 2-core machine under load (sort_freq at max_seq_len 40): first apply
0.2-0.8 s with OpenBLAS's default threads, 0.11-0.13 s with one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

_controller = None


def one_blas_thread() -> AbstractContextManager:
    """A context in which numpy's BLAS runs on one thread (restored on exit)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()  # scans the loaded libraries once (~15 ms)
    return _controller.limit(limits=1, user_api="blas")
