"""FHIR R4 input: Bundles and resources mapped onto the patient model (no web imports)."""

from withdrawal.fhir.mapping import (
    FhirPatient,
    Medication,
    age_on,
    daily_dose_mg,
    is_fhir,
    next_link,
    parse_date,
    read_medication,
    resources_of,
    strengths_mg,
    to_patient,
)

__all__ = [
    "FhirPatient",
    "Medication",
    "age_on",
    "daily_dose_mg",
    "is_fhir",
    "next_link",
    "parse_date",
    "read_medication",
    "resources_of",
    "strengths_mg",
    "to_patient",
]
