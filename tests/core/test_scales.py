"""COWS and SOWS scoring against the published forms.

Reference: Wesson & Ling 2003 and the PCSS-MAT / SAMHSA TIP 45 COWS form (items, allowed
scores, bands 5-12 mild, 13-24 moderate, 25-36 moderately severe, >36 severe; total 0-48);
Handelsman 1987 SOWS (16 items scored 0-4, total 0-64, no validated bands).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from withdrawal.errors import InputError
from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.scales import band_for, score

KB = default_kb()
COWS = KB.scales["cows"]
SOWS = KB.scales["sows"]


def test_cows_has_the_eleven_items_of_the_form() -> None:
    assert [i.id for i in COWS.items] == [
        "resting_pulse_rate", "sweating", "restlessness", "pupil_size", "bone_or_joint_aches",
        "runny_nose_or_tearing", "gi_upset", "tremor", "yawning", "anxiety_or_irritability",
        "gooseflesh_skin",
    ]  # fmt: skip
    assert (COWS.total_min, COWS.total_max) == (0, 48)


@pytest.mark.parametrize(
    ("item", "allowed"),
    [
        ("resting_pulse_rate", (0, 1, 2, 4)),
        ("sweating", (0, 1, 2, 3, 4)),
        ("restlessness", (0, 1, 3, 5)),
        ("pupil_size", (0, 1, 2, 5)),
        ("bone_or_joint_aches", (0, 1, 2, 4)),
        ("runny_nose_or_tearing", (0, 1, 2, 4)),
        ("gi_upset", (0, 1, 2, 3, 5)),
        ("tremor", (0, 1, 2, 4)),
        ("yawning", (0, 1, 2, 4)),
        ("anxiety_or_irritability", (0, 1, 2, 4)),
        ("gooseflesh_skin", (0, 3, 5)),
    ],
)
def test_cows_allowed_scores_match_the_form(item: str, allowed: tuple[int, ...]) -> None:
    found = next(i for i in COWS.items if i.id == item)
    assert found.allowed_scores == allowed
    assert all(o.anchor for o in found.options)


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "none"), (4, "none"), (5, "mild"), (12, "mild"), (13, "moderate"), (24, "moderate"),
     (25, "moderately_severe"), (36, "moderately_severe"), (37, "severe"), (48, "severe")],
)  # fmt: skip
def test_cows_band_edges(total: int, band: str) -> None:
    found = band_for(total, COWS)
    assert found is not None and found.key == band


def _cows_with_total(total: int) -> dict[str, int]:
    """A valid item set adding up to ``total`` (greedy over allowed scores)."""
    left = total
    values: dict[str, int] = {}
    for item in COWS.items:
        pick = max(s for s in item.allowed_scores if s <= left)
        values[item.id] = pick
        left -= pick
    assert left == 0
    return values


@pytest.mark.parametrize("total", [0, 4, 5, 12, 13, 24, 25, 36, 37, 48])
def test_scoring_reaches_every_band_edge(total: int) -> None:
    result = score(_cows_with_total(total), COWS)
    assert result.total == total
    assert result.band == band_for(total, COWS).key  # type: ignore[union-attr]


def test_dunn_vignette_total_is_17_moderate() -> None:
    # The shared vignette p01 item set; the total and band follow from the form.
    items = {"resting_pulse_rate": 2, "sweating": 1, "restlessness": 1, "pupil_size": 1,
             "bone_or_joint_aches": 1, "runny_nose_or_tearing": 2, "gi_upset": 2, "tremor": 1,
             "yawning": 1, "anxiety_or_irritability": 2, "gooseflesh_skin": 3}  # fmt: skip
    result = score(items, COWS)
    assert (result.total, result.band) == (17, "moderate")


def test_invalid_item_score_names_item_and_allowed_values() -> None:
    items = _cows_with_total(0) | {"gooseflesh_skin": 1}
    with pytest.raises(InputError) as exc:
        score(items, COWS)
    assert exc.value.field == "cows.gooseflesh_skin"
    assert exc.value.allowed == [0, 3, 5]
    assert "0, 3, 5" in str(exc.value)


def test_missing_and_unknown_items_are_refused() -> None:
    items = _cows_with_total(0)
    del items["tremor"]
    with pytest.raises(InputError, match="cows.tremor"):
        score(items, COWS)
    with pytest.raises(InputError, match="cows.heart_rate"):
        score(_cows_with_total(0) | {"heart_rate": 1}, COWS)


@pytest.mark.parametrize("bad", [True, 1.0, "2", None])
def test_non_integer_scores_are_refused(bad: object) -> None:
    with pytest.raises(InputError, match="sweating"):
        score(_cows_with_total(0) | {"sweating": bad}, COWS)


cows_items = st.fixed_dictionaries({i.id: st.sampled_from(i.allowed_scores) for i in COWS.items})


@given(cows_items)
def test_cows_total_is_the_sum_and_in_range(items: dict[str, int]) -> None:
    result = score(items, COWS)
    assert result.total == sum(items.values())
    assert 0 <= result.total <= 48
    assert result.band in {"none", "mild", "moderate", "moderately_severe", "severe"}


@given(cows_items, st.sampled_from([i.id for i in COWS.items]))
def test_raising_an_item_never_lowers_total_or_band(items: dict[str, int], key: str) -> None:
    item = next(i for i in COWS.items if i.id == key)
    higher = [s for s in item.allowed_scores if s > items[key]]
    if not higher:
        return
    order = [b.key for b in COWS.bands]
    before = score(items, COWS)
    after = score(items | {key: higher[0]}, COWS)
    assert after.total > before.total
    assert order.index(after.band) >= order.index(before.band)  # type: ignore[arg-type]


@given(st.fixed_dictionaries({i.id: st.integers(0, 4) for i in SOWS.items}))
def test_sows_total_without_bands(items: dict[str, int]) -> None:
    result = score(items, SOWS)
    assert result.total == sum(items.values())
    assert 0 <= result.total <= 64
    assert result.band is None


@given(st.integers().filter(lambda v: v not in range(0, 5)))
def test_sows_item_out_of_range_is_refused(value: int) -> None:
    items = {i.id: 0 for i in SOWS.items} | {"craving": value}
    with pytest.raises(InputError, match="sows.craving"):
        score(items, SOWS)


def test_sows_has_sixteen_items_and_no_invented_bands(kb: KnowledgeBase) -> None:
    sows = kb.scales["sows"]
    assert len(sows.items) == 16
    assert sows.bands == ()
    assert sows.total_max == 64
