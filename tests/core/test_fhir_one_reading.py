"""Readings every path shares, checked against their one definition: a body weight by the reading table's
unit and range rows, a reference's id, and a Bundle's next page."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from withdrawal.fhir import codes, next_link, reading, to_patient
from withdrawal.fhir.mapping import _ref_id, reference_id
from withdrawal.knowledge.loader import default_kb

AS_OF = date(2026, 6, 1)
UNITS = sorted({r.value for r in reading.TABLE if r.element == "weight unit"} - {reading.ABSENT})


def _weight(quantity: dict[str, Any]) -> float | None:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"}
    obs = {"resourceType": "Observation", "id": "w1", "status": "final", "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": codes.LOINC, "code": "29463-7"}]}, "effectiveDateTime": "2026-05-01",
           "valueQuantity": quantity}
    return to_patient([patient, obs], default_kb(), as_of=AS_OF).patient.weight_kg


def _by_the_rows(value: float, unit: str | None) -> float | None:
    """The weight the table's rows give, read off the rows themselves (not through the reader's helpers)."""
    rows = {r.value: r.reading for r in reading.TABLE if r.resource == "Observation" and r.element == "weight unit"}
    lo, hi = (float(next(r.reading for r in reading.TABLE if r.element == "weight range" and r.value == end))
              for end in ("lowest", "highest"))
    factor = rows.get(unit.lower() if unit else reading.ABSENT)
    if factor is None:
        return None
    kg = round(value * float(factor), 2)
    return kg if lo < kg <= hi else None


@given(value=st.one_of(st.floats(-10, 2000, allow_nan=False).map(lambda v: round(v, 1)), st.floats(0, 10, allow_nan=False)),
       unit=st.one_of(st.none(), st.sampled_from(UNITS), st.sampled_from(["KG", "LB", "stone", "mg", "[oz_av]"])),
       where=st.sampled_from(["code", "unit"]))
def test_a_body_weight_is_read_by_the_table_rows(value: float, unit: str | None, where: str) -> None:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity[where] = unit
    assert _weight(quantity) == _by_the_rows(value, unit)


def test_weight_rows_decide_in_kg() -> None:
    assert _weight({"value": 600, "code": "[lb_av]"}) == 272.16  # 600 lb is 272 kg: in range
    assert _weight({"value": 70000, "unit": "g"}) == 70.0
    assert _weight({"value": 70, "unit": "stone"}) is None  # a unit the table does not read
    assert _weight({"value": 501}) is None and _weight({"value": 0, "unit": "kg"}) is None
    assert _weight({"value": 0.1, "unit": "g"}) is None  # 0.0001 kg: no weight (the patient model refused it)


FHIR_ID = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)


@given(rid=FHIR_ID, form=st.sampled_from(["{}", "Patient/{}", "https://ehr.example/fhir/Patient/{}",
                                          "urn:uuid:{}", "#{}", " Patient/{} "]))
def test_a_reference_names_one_id(rid: str, form: str) -> None:
    ref = form.format(rid)
    assert reference_id(ref) == rid == _ref_id({"reference": ref})
    if "/" in ref:
        assert reference_id(ref, "Patient") == rid
        assert reference_id(ref.replace("Patient/", "Group/"), "Patient") is None


LINK = st.fixed_dictionaries({"relation": st.sampled_from(["self", "next", "previous", "next "]),
                              "url": st.one_of(st.text(max_size=5), st.integers())})


@given(links=st.lists(LINK, max_size=5), rtype=st.sampled_from(["Bundle", "Patient"]))
def test_the_next_page_is_the_first_next_link_of_a_bundle(links: list[dict[str, Any]], rtype: str) -> None:
    nexts = [x["url"] for x in links if x["relation"] == "next" and isinstance(x["url"], str)]
    want = nexts[0] if nexts and rtype == "Bundle" else None
    assert next_link({"resourceType": rtype, "link": links}) == want
