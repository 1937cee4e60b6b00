"""Code systems and codes the FHIR mapping recognises.

These are identifiers of terminologies (what a code *means*), not clinical
thresholds. Each group names where it was read.
"""

from __future__ import annotations

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM_URI = "http://hl7.org/fhir/sid/icd-10-cm"

# The HL7 OIDs of the systems read, as records converted from C-CDA or HL7 v2 write them
# (``urn:oid:...``): each names the system of its URI. Each pair is a CodeSystem's URL and its
# ``urn:oid`` identifier in HL7 Terminology (THO), on the pages named in SYSTEM_OID_SOURCES.
# The reading table renders them (``fhir.reading``, 'Coding | system'); every reader reads a coding's system
# through it (``fhir.reading.system_of``).
SYSTEM_OIDS: dict[str, str] = {
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM_URI,
}
_THO = "https://build.fhir.org/ig/HL7/UTG/"
SYSTEM_OID_SOURCES: dict[str, tuple[str, str]] = {
    # SEE: each page: the system's URI with the OID as its identifier (NamingSystem: OID and URI, both preferred)
    "urn:oid:2.16.840.1.113883.6.96": ("SNOMED CT", _THO + "NamingSystem-v3-snomed-CT.json.html"),
    "urn:oid:2.16.840.1.113883.6.88": ("RxNorm", _THO + "CodeSystem-v3-rxNorm.xml.html"),
    "urn:oid:2.16.840.1.113883.6.1": ("LOINC", _THO + "CodeSystem-v3-loinc.xml.html"),
    "urn:oid:2.16.840.1.113883.6.90": ("ICD-10-CM", _THO + "CodeSystem-icd10CM.json.html"),
}
ICD10CM = frozenset(
    {
        ICD10CM_URI,
        "http://hl7.org/fhir/sid/icd-10",
        "urn:oid:2.16.840.1.113883.6.90",
    }
)

# ICD-10-PCS (procedures): the CMS URI and the HL7 OID. SEE: https://terminology.hl7.org/CodeSystem-icd10PCS.html
ICD10PCS = frozenset({"http://www.cms.gov/Medicare/Coding/ICD10", "urn:oid:2.16.840.1.113883.6.4"})

# SEE: https://hl7.org/fhir/uv/ips/ValueSet-pregnancy-status-uv-ips.html
# LOINC 82810-3 "Pregnancy status"; answers LA15173-0 Pregnant (~ SNOMED 77386006),
# LA26683-5 Not pregnant (~ SNOMED 60001007), LA4489-6 Unknown. LOINC 11449-6 "Pregnancy status - Reported"
# (https://loinc.org/11449-6/) is the older code of the same question, with the same answers; EHRs and
# C-CDA-derived records still write it.
PREGNANCY_STATUS_IPS = "82810-3"
PREGNANCY_STATUS = frozenset({PREGNANCY_STATUS_IPS, "11449-6"})
PREGNANT_ANSWERS = frozenset({"LA15173-0", "77386006"})
NOT_PREGNANT_ANSWERS = frozenset({"LA26683-5", "60001007"})

# SEE: https://loinc.org/63895-7/ LOINC 63895-7 "Breastfeeding status"; answers
# LA29252-6 Currently breastfeeding, LA29253-4 Not currently breastfeeding (the answer list
# national profiles bind, e.g. ISiK Stillstatus); a valueBoolean is read as well.
BREASTFEEDING_STATUS = frozenset({"63895-7"})
BREASTFEEDING_ANSWERS = frozenset({"LA29252-6"})
NOT_BREASTFEEDING_ANSWERS = frozenset({"LA29253-4"})

# Creatinine clearance (mL/min). NOTE: 2164-2 is the 24 h urine clearance; 35591-7 the
# Cockcroft-Gault estimate. Codes as listed by LOINC (https://loinc.org/2164-2/).
CREATININE_CLEARANCE = frozenset({"2164-2", "35591-7", "33558-4"})
# eGFR (mL/min/1.73 m2): MDRD 33914-3, 48642-3, 48643-1; CKD-EPI 62238-1, 88293-6,
# 88294-4; CKD-EPI 2021 98979-8. Used only as a stand-in when no clearance is recorded.
EGFR = frozenset({"33914-3", "48642-3", "48643-1", "50044-7", "62238-1", "88293-6", "88294-4", "98979-8", "69405-9"})
BODY_WEIGHT = frozenset({"29463-7", "3141-9"})

# CYP2D6 phenotype: LOINC 79714-9 (CYP2D6 gene product metabolic activity interpretation)
# and the genomics-reporting "Genetic variation's effect on drug metabolism" 53040-2.
# NOTE: the value is read from its text/display ("poor metabolizer" ...), which every
# coding scheme for phenotypes spells out; a value we cannot read is reported, not guessed.
CYP2D6_PHENOTYPE = frozenset({"79714-9", "53040-2"})
CYP2D6_OWN = "79714-9"  # the CYP2D6-specific code; 53040-2 is for any gene
CYP2D6_GENE = "CYP2D6"  # HGNC symbol (HGNC:2625): names the gene in a 53040-2 result or an uncoded one

# Statuses, dates, units and tie-breaks: withdrawal.fhir.reading (one table for every path).
