"""Tramadol safety screen driven by the knowledge base's rules."""

from withdrawal.safety.screen import (
    DoseLimitResult,
    Finding,
    ScreenResult,
    dose_limit,
    level_rank,
    screen_tramadol,
)

__all__ = [
    "DoseLimitResult",
    "Finding",
    "ScreenResult",
    "dose_limit",
    "level_rank",
    "screen_tramadol",
]
