"""A dose given at several times of day written as ``timing.repeat.when`` (MORN, NOON, EVE, NIGHT) or
``timeOfDay`` (08:00, 14:00, 20:00), with no ``frequency``, is given at each of them: the daily dose counts
every listed time (the most allowed, stricter when in doubt). It was read as once a day, so a tramadol
order of 100 mg four times a day read as 100 mg/day and passed the order check's limit. The per-patient
mapper and the bulk screen's dose map read it with the same ``daily_dose_mg``."""

from __future__ import annotations

from typing import Any

import pytest

from withdrawal.fhir.mapping import daily_dose_mg
from withdrawal.knowledge.loader import default_kb


def _dosage(repeat: dict[str, Any], mg: float = 100) -> list[dict[str, Any]]:
    return [{"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg"}}]}]


DAY = {"period": 1, "periodUnit": "d"}


@pytest.mark.parametrize(("repeat", "mg_day"), [
    ({**DAY, "when": ["MORN", "NOON", "EVE", "NIGHT"]}, 400),
    ({**DAY, "when": ["MORN", "NIGHT"], "frequency": 1}, 200),
    ({**DAY, "timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}, 300),
    ({**DAY, "when": ["MORN", "MORN"]}, 100),  # the same time twice is one time
    ({**DAY, "when": ["HS"], "frequency": 2}, 200),  # a frequency above the times listed still counts
    ({**DAY, "frequency": 4}, 400),
    ({**DAY}, 100),
])
def test_every_listed_time_of_day_counts(repeat: dict[str, Any], mg_day: float) -> None:
    assert daily_dose_mg(_dosage(repeat), None, default_kb()) == mg_day


def test_times_of_day_without_a_period_leave_the_dose_unread() -> None:
    assert daily_dose_mg(_dosage({"when": ["MORN", "NIGHT"]}), None, default_kb()) is None
