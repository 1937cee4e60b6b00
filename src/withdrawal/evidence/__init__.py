"""Evidence module: effect sizes, metafor-compatible meta-analysis, plots, tramadol summary."""

from __future__ import annotations

from withdrawal.evidence.effects import (
    EffectSizes,
    effect_sizes_given,
    escalc_binary,
    escalc_continuous,
)
from withdrawal.evidence.meta import ConvergenceError, MetaResult, pool, rma

__all__ = [
    "ConvergenceError",
    "EffectSizes",
    "MetaResult",
    "effect_sizes_given",
    "escalc_binary",
    "escalc_continuous",
    "pool",
    "rma",
]
