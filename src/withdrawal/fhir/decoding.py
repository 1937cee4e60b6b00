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

Bundles nest: ``entry[].resource`` is a :data:`Resource` again. A body that is not such a structure
(a prefetch value that is not an object, an entry that is not one) is refused by the decoder
(:class:`msgspec.ValidationError`); the caller then reads it in full.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec

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

ELEMENTS: frozenset[str] = frozenset(Resource.__annotations__)
"""Every element a decoded resource may hold."""

DecodeError = (msgspec.DecodeError, msgspec.ValidationError)
"""What a decoder raises for a body it does not read (malformed JSON, or not the expected structure)."""


def decoder(shape: Any = Resource) -> msgspec.json.Decoder[Any]:
    """A JSON decoder of ``shape``; :data:`Resource` where a FHIR resource or Bundle stands."""
    return msgspec.json.Decoder(shape)


def decode_resource(body: bytes | str) -> Any:
    """A FHIR resource or Bundle, decoded to the elements the readers read."""
    return _RESOURCE.decode(body)


_RESOURCE = decoder()
