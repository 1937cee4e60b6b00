"""Withdrawal scales (COWS, SOWS): pure scoring over the knowledge-base definitions."""

from withdrawal.scales.scoring import ScaleScore, band_for, score

__all__ = ["ScaleScore", "band_for", "score"]
