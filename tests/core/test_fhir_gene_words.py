"""What names CYP2D6 in an Observation's words is one row of the reading table ("code text naming
CYP2D6", from ``fhir.codes.CYP2D6_GENE``): the mapper (per patient, and through ``observation_coded`` the
bulk screen) and the CDS decoder's filter (``read_by_a_reader``) both read it from there, and agree."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.fhir import codes, reading
from withdrawal.fhir.decoding import read_by_a_reader
from withdrawal.fhir.mapping import observation_coded, observation_kind

GENE = codes.CYP2D6_GENE
words = st.lists(st.sampled_from([GENE, GENE.lower(), "Cyp2D6", "CYP2D", "2D6", "CYP2C19", "metabolizer", "status",
                                  "genotype", "poor", "", " "]) | st.text(max_size=6), max_size=5).map(" ".join)
phenotypes = st.sampled_from(["Poor metabolizer", "Ultrarapid metabolizer", "normal", "unreadable"])


def _names_gene(text: str | None) -> bool:
    return GENE.lower() in (text or "").lower()


def test_the_gene_is_one_row_of_the_table() -> None:
    assert reading.named_words("cyp2d6") == (GENE.lower(),) == reading.named_words()
    assert reading.reading_of("Observation", "code", reading.TEXT_NAMING + GENE) == "cyp2d6"
    assert reading.named_words("pregnancy") == ()


@settings(max_examples=300, deadline=None)
@given(text=st.none() | words, display=st.none() | words, value=phenotypes)
def test_an_uncoded_result_is_read_by_its_words_on_every_path(text: str | None, display: str | None,
                                                              value: str) -> None:
    concept: dict[str, Any] = {}
    if text is not None:
        concept["text"] = text
    if display is not None:
        concept["coding"] = [{"system": "urn:local", "code": "x1", "display": display}]
    obs = {"resourceType": "Observation", "status": "final", "code": concept, "valueString": value}
    kind, _, phenotype = observation_coded(obs)
    shown = (text or "").strip() or display  # the mapper reads the code's text, else its first display
    assert (kind == "cyp2d6") == _names_gene(shown) == (observation_kind((), shown) == "cyp2d6")
    assert kind in (None, "cyp2d6") and (phenotype is None or kind == "cyp2d6")
    # the decoder keeps every Observation the mapper reads (it looks at every display: a superset)
    assert not kind or read_by_a_reader(obs)
    assert read_by_a_reader(obs) == (_names_gene(text) or _names_gene(display))


@settings(max_examples=200, deadline=None)
@given(text=st.none() | words, component=st.none() | words, code=st.sampled_from(sorted(codes.CYP2D6_PHENOTYPE)),
       value=phenotypes)
def test_a_coded_result_names_the_gene_in_its_code_or_components(text: str | None, component: str | None,
                                                                  code: str, value: str) -> None:
    concept: dict[str, Any] = {"coding": [{"system": codes.LOINC, "code": code}]}
    if text is not None:
        concept["text"] = text
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": concept,
                           "valueCodeableConcept": {"text": value}}
    if component is not None:
        obs["component"] = [{"code": {"coding": [{"system": codes.LOINC, "code": "48018-6"}]},
                             "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org",
                                                                  "code": "HGNC:2625", "display": component}]}}]
    kind, _, phenotype = observation_coded(obs)
    assert kind == "cyp2d6" and read_by_a_reader(obs)
    readable = value != "unreadable"
    named = code == codes.CYP2D6_OWN or _names_gene(text) or _names_gene(component)
    assert (phenotype is not None) == (readable and named)
