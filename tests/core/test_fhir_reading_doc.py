"""docs/fhir-reading.md is the reading table, rendered: it cannot drift from what the code does."""

from __future__ import annotations

from pathlib import Path

from withdrawal.fhir import reading

PAGE = Path(__file__).resolve().parents[2] / "docs" / "fhir-reading.md"


def test_reading_page_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == reading.markdown(), (
        "regenerate: python -m withdrawal.fhir.reading > docs/fhir-reading.md"
    )


def test_every_row_is_unique_and_documented() -> None:
    keys = [r.key for r in reading.TABLE]
    assert len(keys) == len(set(keys))
    page = reading.markdown()
    for r in reading.TABLE:
        assert f"`{r.value}`" in page


def test_table_decisions() -> None:
    assert reading.med_status("MedicationRequest", "draft") == "active"
    assert reading.med_status("MedicationStatement", "intended") == "active"
    assert reading.med_status("MedicationRequest", None) == "active"
    assert reading.med_status("MedicationRequest", "cancelled") == "ignored"
    assert reading.med_status("MedicationStatement", "not-taken") == "ignored"
    assert reading.dose_unit_factor("g") == "1000"
    assert reading.dose_unit_factor("{pill}") == "strength"
    assert reading.dose_unit_factor("furlong") is None
    assert reading.PREGNANCY_LOOKBACK_DAYS == 280
    assert [p for p, _ in reading.phenotype_words()] == ["ultrarapid", "poor", "intermediate", "normal"]
