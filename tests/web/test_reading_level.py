"""Issue 17: the patient text's reading level, measured page by page (title, introduction and every
paragraph, as a page shows them). English: Flesch-Kincaid grade 8 or below. Spanish: Fernández-Huerta
70 or more and Szigriszt-Pazos 65 or more, both "fairly easy" ("bastante fácil") or easier."""

from __future__ import annotations

import pytest
import textstat

from withdrawal.knowledge.loader import default_kb
from withdrawal.knowledge.patient_info import PatientInfo

FK_MAX = 8.0
FERNANDEZ_HUERTA_MIN = 70.0
SZIGRISZT_PAZOS_MIN = 65.0


def pages(info: PatientInfo) -> dict[str, str]:
    out = {s.id: " ".join([s.title, s.intro, *(p.text for p in s.points)]) for s in info.sections}
    out["questions"] = " ".join([info.faq_intro.text, *(f.question + " " + " ".join(p.text for p in f.answer)
                                                        for f in info.faqs)])
    return out


def english_grade(text: str) -> float:
    textstat.set_lang("en")
    return float(textstat.flesch_kincaid_grade(text))


def spanish_scores(text: str) -> tuple[float, float]:
    textstat.set_lang("es")
    try:
        return float(textstat.fernandez_huerta(text)), float(textstat.szigriszt_pazos(text))
    finally:
        textstat.set_lang("en")


@pytest.mark.parametrize("page", sorted(pages(default_kb().patient_info["en"])))
def test_english_patient_pages_are_grade_8_or_below(page: str) -> None:
    grade = english_grade(pages(default_kb().patient_info["en"])[page])
    assert grade <= FK_MAX, f"{page}: Flesch-Kincaid grade {grade}"


@pytest.mark.parametrize("page", sorted(pages(default_kb().patient_info["es"])))
def test_spanish_patient_pages_are_fairly_easy_or_easier(page: str) -> None:
    fh, sp = spanish_scores(pages(default_kb().patient_info["es"])[page])
    assert fh >= FERNANDEZ_HUERTA_MIN, f"{page}: Fernández-Huerta {fh}"
    assert sp >= SZIGRISZT_PAZOS_MIN, f"{page}: Szigriszt-Pazos {sp}"


def test_the_measures_tell_hard_text_from_plain_text() -> None:
    hard_en = ("Concomitant administration of serotonergic pharmacotherapies necessitates comprehensive "
               "evaluation of pharmacodynamic interactions, particularly regarding neurotoxicity manifestations.")
    assert english_grade(hard_en) > FK_MAX
    hard_es = ("La administración concomitante de farmacoterapias serotoninérgicas necesita una evaluación "
               "exhaustiva de las interacciones farmacodinámicas, particularmente las manifestaciones neurotóxicas.")
    fh, sp = spanish_scores(hard_es)
    assert fh < FERNANDEZ_HUERTA_MIN and sp < SZIGRISZT_PAZOS_MIN
    assert english_grade(pages(default_kb().patient_info["en"])["help_now"]) <= FK_MAX
