"""One intake: how every interface reads a patient it is given.

The CLI, the REST API, the pages and the SMART launch all read through here (:func:`read_patient`;
:func:`read_fhir_record` when the interface also shows what was left out), so that
"is this FHIR or version-1 input?", the date a FHIR record is read as of, and what that date
means (UTC) are decided once. Above the domain and the FHIR reading; below every interface.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from withdrawal.errors import InputError
from withdrawal.fhir.mapping import is_fhir
from withdrawal.fhir.questionnaire import BedsideRecord, to_patient_at_bedside
from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.patient import PatientIn, parse_patient

AS_OF_FIELD = "as_of"


def read_patient(raw: Any, kb: KnowledgeBase, as_of: date | None = None, *, now: datetime | None = None) -> PatientIn:
    """A validated patient from version-1 JSON, or from a FHIR R4 Bundle, resource or resource list.

    A FHIR record is read as of ``now`` (default: the current UTC time) or, when ``as_of`` names
    another day, the end of that day (UTC): ages, days since stopping, look-backs, COWS and SOWS,
    and the hours since the last opioid count to it. A version-1 input states its facts as they
    are, so an ``as_of`` with it is refused rather than silently ignored.
    """
    if is_fhir(raw):
        return read_fhir_record(raw, kb, as_of, now=now).patient
    if as_of is not None:
        raise InputError(AS_OF_FIELD, "only for a FHIR record (a version-1 input states its facts as they are)",
                         value=as_of.isoformat())
    return parse_patient(raw)


def read_fhir_record(raw: Any, kb: KnowledgeBase, as_of: date | None = None, *, now: datetime | None = None,
                     patient_id: str | None = None) -> BedsideRecord:
    """A FHIR record read as :func:`read_patient` reads it, with what was left out and why, and the
    bedside reading (COWS, SOWS, last use) it was made with."""
    now = now or datetime.now(UTC)
    if as_of is not None and as_of != now.date():
        now = datetime.combine(as_of, time.max, tzinfo=UTC)
    return to_patient_at_bedside(raw, kb, as_of=now.date(), now=now, patient_id=patient_id)
