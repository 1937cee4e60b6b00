"""The patient and family content the pages show, from the one knowledge base."""

from __future__ import annotations

from withdrawal.knowledge.loader import default_kb
from withdrawal.knowledge.patient_info import PatientInfo


def patient_info(lang: str = "en") -> PatientInfo:
    """The packaged content in ``lang`` (en, es): loaded and checked with the knowledge base."""
    return default_kb().patient_info[lang]
