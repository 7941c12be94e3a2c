"""What every experiment's ``run`` does before training: resolve the preset and the models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["resolve"]


def resolve(preset: Any, models: list[str] | None, presets: Mapping[str, Any],
            registry: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """``(preset object, model names)``: a preset name is looked up in ``presets``;
    ``models=None`` means every model of ``registry``. Unknown names raise ValueError
    listing the valid ones."""
    if isinstance(preset, str):
        if preset not in presets:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets)}")
        preset = presets[preset]
    models = list(registry) if models is None else models
    unknown = [m for m in models if m not in registry]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid: {', '.join(registry)}")
    return preset, models
