"""Score a withdrawal scale item by item.

Items, allowed scores and bands come from the scale definition in the
knowledge base; this module only checks and adds. A score that the form does
not allow (COWS pulse has no 3) is refused, naming the item and its allowed
values, rather than rounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from withdrawal.errors import InputError
from withdrawal.knowledge.models import Band, Scale


@dataclass(frozen=True)
class ScaleScore:
    scale: str
    total: int
    max_total: int
    band: str | None
    band_label: str | None
    items: Mapping[str, int]
    sources: tuple[str, ...]


def band_for(total: int, scale: Scale) -> Band | None:
    """The band holding ``total``, or None for scales without bands."""
    if not scale.total_min <= total <= scale.total_max:
        raise InputError(
            f"{scale.id}.total",
            f"must be between {scale.total_min} and {scale.total_max}",
            value=total,
        )
    for band in scale.bands:
        if band.min <= total <= band.max:
            return band
    return None


def score(observations: Mapping[str, object], scale: Scale, *, field: str = "") -> ScaleScore:
    """Total a complete assessment; every item must be present with an allowed score."""
    prefix = f"{field or scale.id}."
    items = {i.id: i for i in scale.items}
    for key in observations:
        if key not in items:
            raise InputError(
                f"{prefix}{key}", "is not an item of " + scale.name, allowed=list(items)
            )
    values: dict[str, int] = {}
    for item in scale.items:
        if item.id not in observations:
            raise InputError(f"{prefix}{item.id}", "is missing", allowed=item.allowed_scores)
        value = observations[item.id]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (value not in item.allowed_scores)
        ):
            raise InputError(
                f"{prefix}{item.id}",
                f"score {value!r} is not allowed for '{item.label}'",
                value=value,
                allowed=item.allowed_scores,
            )
        values[item.id] = value
    total = sum(values.values())
    band = band_for(total, scale)
    return ScaleScore(
        scale=scale.id,
        total=total,
        max_total=scale.total_max,
        band=band.key if band else None,
        band_label=band.label if band else None,
        items=values,
        sources=tuple(dict.fromkeys((*scale.sources, *(band.sources if band else ())))),
    )
