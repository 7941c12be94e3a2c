"""Argument checks shared by the whole library: one error type, one message per mistake.

As in scikit-learn (``InvalidParameterError``), a bad argument raises an error that is both a
``ValueError`` and a ``TypeError``, so callers may catch either; the message names the
argument, what was expected and what was given.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InvalidParameterError", "check_int"]


class InvalidParameterError(ValueError, TypeError):
    """An argument of the wrong type or out of range."""


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` if it is an int (not a bool) >= ``low``; otherwise an
    :class:`InvalidParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(f"{name} must be an int >= {low}, got "
                                    f"{type(value).__name__} {value!r}")
    if value < low:
        raise InvalidParameterError(f"{name} must be >= {low}, got {value!r}")
    return value
