"""A tramadol taper modelled on the trials, kept inside the patient's dose limit.

The numbers (start dose, length, step, single-dose ceiling) come from the
knowledge base's ``tramadol_taper`` entry with their sources; this module only
lays the days out: the start dose held, then equal daily steps down, in
immediate-release doses of whole steps, never above the patient's daily maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from withdrawal.knowledge.models import TaperDesign
from withdrawal.safety.screen import DoseLimitResult


@dataclass(frozen=True)
class TaperDay:
    day: int
    total_mg: int
    doses_mg: tuple[int, ...]
    interval_h: int

    def times_h(self) -> list[float]:
        """Dose times in hours from the start of the regimen."""
        start = (self.day - 1) * 24.0
        return [start + i * self.interval_h for i in range(len(self.doses_mg))]


def _split(total: int, slots: int, step: int) -> tuple[int, ...]:
    steps = total // step
    n = min(slots, steps)
    if n == 0:
        return ()
    base, extra = divmod(steps, n)
    return tuple((base + (1 if i < extra else 0)) * step for i in range(n))


def tramadol_taper(limit: DoseLimitResult, design: TaperDesign) -> tuple[TaperDay, ...]:
    """Day-by-day immediate-release taper within ``limit``."""
    return _taper(
        limit.max_daily_mg,
        limit.interval_h,
        design.start_mg_per_day,
        design.step_mg,
        design.max_single_dose_mg,
        design.days,
        design.hold_days,
    )


@lru_cache(maxsize=512)
def _taper(
    max_daily_mg: int, interval_h: int, start_mg: int, step: int, max_single_mg: int, n_days: int, hold_days: int
) -> tuple[TaperDay, ...]:
    # NOTE: a pure function of a few numbers (the result is immutable), so it is cached:
    # every assessment lays out a taper and only a handful of limits exist.
    slots = max(1, 24 // interval_h)
    ceiling = min(start_mg, max_daily_mg, slots * max_single_mg)
    start = ceiling - ceiling % step
    steps_down = n_days - hold_days + 1
    days = []
    for day in range(1, n_days + 1):
        if day <= hold_days:
            total = start
        else:
            fraction = (n_days - day + 1) / steps_down
            total = max(step, int(round(start * fraction / step)) * step)
        doses = _split(total, slots, step)
        days.append(TaperDay(day, sum(doses), doses, interval_h))
    return tuple(days)


def doses_timeline(days: tuple[TaperDay, ...]) -> list[tuple[float, float]]:
    """(time_h, dose_mg) pairs of a taper, for simulation."""
    return [(t, float(d)) for day in days for t, d in zip(day.times_h(), day.doses_mg, strict=True)]
