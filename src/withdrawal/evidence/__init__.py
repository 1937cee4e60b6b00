"""Evidence module: effect sizes, metafor-compatible meta-analysis (pooling, Mantel-Haenszel and
Peto, meta-regression, subgroups, small-study bias, influence), plots, tramadol summary."""

from __future__ import annotations

from withdrawal.evidence.bias import bias_checks, influence
from withdrawal.evidence.effects import (
    EffectSizes,
    effect_sizes_given,
    escalc_binary,
    escalc_continuous,
)
from withdrawal.evidence.meta import ConvergenceError, MetaResult, pool, rma
from withdrawal.evidence.mh import mantel_haenszel, peto
from withdrawal.evidence.regression import meta_regression, subgroup_analysis

__all__ = [
    "ConvergenceError",
    "EffectSizes",
    "MetaResult",
    "bias_checks",
    "effect_sizes_given",
    "escalc_binary",
    "escalc_continuous",
    "influence",
    "mantel_haenszel",
    "meta_regression",
    "peto",
    "pool",
    "rma",
    "subgroup_analysis",
]
