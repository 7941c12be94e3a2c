"""Seeded random streams (every entry point takes an integer seed) and CPU thread control.

Independent streams (training data, test data, model initialisation, ...) are derived from one
user seed and a stream name, so adding a new stream never changes the numbers of another.
"""

from __future__ import annotations

import numbers
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from tlr.validation import check_int


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream, a pure function of (seed, stream)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not isinstance(stream, str):
        raise TypeError(f"stream must be a str, got {type(stream).__name__}")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    mixed = (seed * 0x9E3779B97F4A7C15 + zlib.crc32(stream.encode())) % (2**63 - 1)
    return int(mixed)


def make_generator(seed: int, stream: str = "default",
                   device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded for the named stream (:func:`derive_seed`).

    The same seed gives the same numbers on the same device; a CUDA generator draws a
    different (equally seeded) sequence from a CPU one."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, stream))
    return g


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (restored afterwards); None: leave as is.

    Determinism note: results are reproducible for a fixed thread count; reductions may round
    differently with another count.
    """
    if n is None:
        yield
        return
    check_int("threads", n)
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
