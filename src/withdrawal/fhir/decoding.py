"""A JSON decoder for FHIR resources that keeps only the elements the reading table reads.

A patient's whole record can come in one request (a CDS prefetch of 1,400 Observations, 1.4 MB):
building Python objects for every element of it was most of the request's time, though the readers
look at a few elements of each resource. :data:`Resource` is a ``TypedDict`` of exactly the elements
:func:`withdrawal.fhir.reading.elements_read` derives from the table's rows (and the few read beyond
them), every one typed ``Any``; msgspec skips every other key in native code, without building it.

What comes out is plain ``dict``s and ``list``s, as ``json.loads`` gives, so the readers
(``mapping``, ``questionnaire``) run unchanged and read the same values: an element is kept whole, with
whatever shape it has (a malformed one is still skipped and named by the reader, as before). One
decoding type serves every resource type (msgspec cannot choose a ``TypedDict`` by ``resourceType``):
a resource keeps the elements any type's readers read, a superset of its own.

Then an Observation that no reader reads (vital signs, labs: most of a record) is passed over
(:func:`read_by_a_reader`) before the readers walk it: only its codes are compared, with the codes the
table's Observation rows and the bedside readers name.

Bundles nest: ``entry[].resource`` is a :data:`Resource` again. A body that is not such a structure
(a prefetch value that is not an object, an entry that is not one) is refused by the decoder
(:class:`msgspec.ValidationError`); the caller then reads it in full.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec

from withdrawal.fhir import reading
from withdrawal.fhir.questionnaire import HOURS_CODE, LOINC_CODES, SCALES
from withdrawal.fhir.reading import elements_read


def _fields() -> dict[str, Any]:
    names = dict.fromkeys(e for elements in elements_read().values() for e in elements)
    fields: dict[str, Any] = dict.fromkeys(names, Any)
    fields["entry"] = list["Entry"]  # a Bundle's entries: each resource decoded the same way
    return fields


class Entry(TypedDict, total=False):
    """A Bundle entry: its resource only, decoded as any other."""

    resource: Resource


# NOTE: built from the table at import; msgspec resolves the forward references in this module.
Resource = TypedDict("Resource", _fields(), total=False)  # type: ignore[misc]

DecodeError = (msgspec.DecodeError, msgspec.ValidationError)
"""What a decoder raises for a body it does not read (malformed JSON, or not the expected structure)."""


def decoder(shape: Any = Resource) -> msgspec.json.Decoder[Any]:
    """A JSON decoder of ``shape``; :data:`Resource` where a FHIR resource or Bundle stands."""
    return msgspec.json.Decoder(shape)


_OBSERVATION_CODES = frozenset((*reading.values("Observation", "code"), *(f"{s}-total" for s in SCALES), HOURS_CODE,
                                *LOINC_CODES.values()))
"""Every code an Observation reader looks for: the table's Observation code rows, COWS/SOWS totals, hours."""
_NAMED = reading.named_words()
"""An uncoded Observation is read by the words of its code text (the table's "code text naming" rows)."""


def _names(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _NAMED)


def read_by_a_reader(res: Any) -> bool:
    """False for an Observation no reader reads: none of its codes (of any system) is one a reader looks
    for and its code's words do not name what an uncoded result is read by. Anything else, and anything
    unusual in the code's shape, is kept: the readers decide (a superset of what they read, never less)."""
    if type(res) is not dict or res.get("resourceType") != "Observation":
        return True
    concept = res.get("code")
    if type(concept) is not dict:
        return True
    text = concept.get("text")
    if text is not None and (type(text) is not str or _names(text)):
        return True
    codings = concept.get("coding")
    if codings is None:
        return False
    if type(codings) is not list:
        return True
    for c in codings:
        if type(c) is not dict:
            return True
        code, display = c.get("code"), c.get("display")
        if code is not None and (type(code) is not str or code in _OBSERVATION_CODES
                                 or code.strip() in _OBSERVATION_CODES):
            return True
        if display is not None and (type(display) is not str or _names(display)):
            return True
    return False
