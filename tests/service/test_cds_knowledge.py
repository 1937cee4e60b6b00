"""What the CDS cards say comes from the knowledge base: the unidentified-order card is the
incomplete-screen rule, the conditions that make a patient-view card relevant are a vocabulary
group, the buprenorphine order's route and product are the option's, and the advice for a dose
that cannot be read is a care statement. A knowledge base changed in the data changes the cards."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from svc_synthea import full_prefetch

from tests_support import kb_with
from withdrawal.errors import KnowledgeBaseError
from withdrawal.knowledge.loader import KnowledgeBase, default_kb, load_kb
from withdrawal.service.cds import cards, hooks
from withdrawal.service.cds.prefetch import assemble

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _bundle(*res: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in res]}


def _condition(code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": f"c-{code}", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"coding": [{"system": ICD, "code": code}]}}


def _prefetch(*conditions: dict[str, Any]) -> dict[str, Any]:
    return full_prefetch({"resourceType": "Patient", "id": "p1", "birthDate": "1985-04-02", "gender": "male"},
                         conditions=_bundle(*conditions), medications=_bundle(), allergies=_bundle(),
                         observations=_bundle())


def _order_sign(kb: KnowledgeBase, *drafts: dict[str, Any]) -> list[dict[str, Any]]:
    context = {"patientId": "p1", "draftOrders": _bundle(*drafts)}
    orders = hooks.orders("order-sign", context, kb, NOW.date(), hooks.draft_medications(context, _prefetch()))
    return hooks.answer("withdrawal-order-sign", context, kb, orders, assemble(_prefetch(), {}), now=NOW).cards


def _patient_view(kb: KnowledgeBase, *conditions: dict[str, Any]) -> list[dict[str, Any]]:
    context = {"patientId": "p1"}
    return hooks.answer("withdrawal-patient-view", context, kb, hooks.Orders(), assemble(_prefetch(*conditions), {}),
                        now=NOW).cards


UNREADABLE = {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
              "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/not-sent"}}


def _unscreened(kb: KnowledgeBase) -> dict[str, Any]:
    cards = _order_sign(kb, UNREADABLE)
    assert len(cards) == 1
    return cards[0]


# --- the unidentified order: the incomplete-screen rule -------------------------------------


def test_the_unscreened_order_card_says_and_cites_the_incomplete_screen_rule() -> None:
    kb = default_kb()
    rule = kb.rule("incomplete_screen")
    card = _unscreened(kb)
    # named as the mapper names such a record (fhir.mapping.unidentified_medication)
    assert card["summary"] == ("Order not screened: MedicationRequest/d1: medication not identified "
                               "(Medication/not-sent not in the data)")
    assert card["indicator"] == "warning"
    detail = card["detail"]
    assert rule.message in detail and rule.action in detail
    assert "the draft order MedicationRequest/d1: medication not identified (Medication/not-sent" in detail
    linked = [kb.sources[s].title for s in rule.sources]
    assert all(t in detail for t in linked)
    assert card["source"]["label"].startswith(tuple(linked))


def test_the_unscreened_order_summary_names_the_order_truncated() -> None:
    long_ref = {**UNREADABLE, "medicationReference": {"reference": "Medication/" + "x" * 200}}
    card = _order_sign(default_kb(), long_ref)[0]
    assert card["summary"].startswith("Order not screened: MedicationRequest/d1: medication not identified "
                                      "(Medication/xxx")
    assert len(card["summary"]) < 140


def test_the_unscreened_order_card_follows_the_data(tmp_path: Path) -> None:
    def change(raw: dict[str, Any]) -> None:
        rule = next(r for r in raw["rules"] if r["id"] == "incomplete_screen")
        rule.update(message="Changed message for the test.", action="Changed action for the test.",
                    sources=["openfda_tramadol_labels"])

    card = _unscreened(load_kb(kb_with(tmp_path, "tramadol.yaml", change)))
    assert "Changed message for the test." in card["detail"] and "Changed action for the test." in card["detail"]
    assert default_kb().sources["dailymed_tramadol_ir"].title not in card["detail"]


def test_a_knowledge_base_without_the_incomplete_screen_rule_does_not_load(tmp_path: Path) -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["rules"] = [r for r in raw["rules"] if r["id"] != "incomplete_screen"]

    with pytest.raises(KnowledgeBaseError, match="incomplete_screen"):
        load_kb(kb_with(tmp_path, "tramadol.yaml", change))


# --- which patients the patient-view services answer for: the opioid_use group ----------------


def _group(change_conditions: Any) -> Any:
    def change(raw: dict[str, Any]) -> None:
        group = next(g for g in raw["condition_groups"] if g["id"] == "opioid_use")
        group["conditions"] = change_conditions(group["conditions"])

    return change


def test_the_opioid_use_group_is_the_vocabularys() -> None:
    kb = default_kb()
    assert kb.condition_group("opioid_use") == {"opioid_use_disorder", "opioid_withdrawal"}
    assert not hasattr(hooks, "OUD")


def test_patient_view_answers_for_the_groups_conditions_only(tmp_path: Path) -> None:
    kb = default_kb()
    oud, epilepsy = _condition("F11.20"), _condition("G40.909")
    assert [c["source"]["topic"]["code"] for c in _patient_view(kb, oud)][:1] == ["patient_view"]
    assert _patient_view(kb, epilepsy) == []
    # the group without opioid use disorder: the same patient gets no card
    narrow = load_kb(kb_with(tmp_path / "a", "vocabulary.yaml", _group(lambda ks: ["opioid_withdrawal"])))
    assert _patient_view(narrow, oud) == []
    # a condition added to the group: its patients get the cards
    wide = load_kb(kb_with(tmp_path / "b", "vocabulary.yaml", _group(lambda ks: [*ks, "seizure_disorder"])))
    assert _patient_view(wide, epilepsy)


@pytest.mark.parametrize(("change", "error"), [
    (_group(lambda ks: [*ks, "no_such_condition"]), "no_such_condition"),
    (lambda raw: raw.pop("condition_groups"), "opioid_use"),
])
def test_the_opioid_use_group_is_checked_at_load(tmp_path: Path, change: Any, error: str) -> None:
    with pytest.raises(KnowledgeBaseError, match=error):
        load_kb(kb_with(tmp_path, "vocabulary.yaml", change))


# --- the buprenorphine order: the option's route --------------------------------------------


def _bup_order(kb: KnowledgeBase) -> dict[str, Any]:
    a, _, _ = hooks.assess({"patientId": "p1"}, kb, assemble(_prefetch(), {}), [], now=NOW, record=False)
    return cards.bup_nx_order(a, "Patient/p1")


def test_the_buprenorphine_order_takes_its_route_from_the_option(tmp_path: Path) -> None:
    kb = default_kb()
    order = _bup_order(kb)
    route = kb.treatment("buprenorphine").route
    assert route == "sublingual"
    assert order["dosageInstruction"] == [{"text": kb.treatment("buprenorphine").dosing, "route": {"text": route}}]
    product = kb.treatment("buprenorphine").order_product
    assert product == "buprenorphine/naloxone"
    assert order["medicationCodeableConcept"]["text"] == f"{product} sublingual (product per local formulary)"

    def change(raw: dict[str, Any]) -> None:
        next(t for t in raw["treatments"] if t["id"] == "buprenorphine")["route"] = "buccal"

    changed = _bup_order(load_kb(kb_with(tmp_path, "care.yaml", change)))
    assert changed["dosageInstruction"][0]["route"] == {"text": "buccal"}
    assert changed["medicationCodeableConcept"]["text"] == "buprenorphine/naloxone buccal (product per local formulary)"


# --- the buprenorphine suggestion names the option's order product ---------------------------


def _replace_suggestion(kb: KnowledgeBase) -> dict[str, Any] | None:
    a, _, _ = hooks.assess({"patientId": "p1"}, kb, assemble(_prefetch(), {}), [], now=NOW, record=False)
    order = cards.DraftOrder("d1", ("tramadol",), 200.0, "tramadol 50 mg tablet", has_dosage=True)
    found = cards._suggestions(a, [order], "Patient/p1", replace=True)
    return next((s for s in found if s.get("isRecommended")), None)


def test_the_replace_suggestion_names_the_order_product_of_the_data(tmp_path: Path) -> None:
    kb = default_kb()
    product = kb.treatment("buprenorphine").order_product
    first = _replace_suggestion(kb)
    assert first is not None and first["label"] == f"Replace with {product}"
    create = next(x for x in first["actions"] if x["type"] == "create")
    assert create["description"] == f"Order {product} instead"

    def change(raw: dict[str, Any]) -> None:
        next(t for t in raw["treatments"] if t["id"] == "buprenorphine")["order_product"] = "buprenorphine mono-product"

    changed = _replace_suggestion(load_kb(kb_with(tmp_path / "a", "care.yaml", change)))
    assert changed is not None and changed["label"] == "Replace with buprenorphine mono-product"
    create = next(x for x in changed["actions"] if x["type"] == "create")
    assert create["description"] == "Order buprenorphine mono-product instead"
    assert create["resource"]["medicationCodeableConcept"]["text"].startswith("buprenorphine mono-product sublingual")

    def drop(raw: dict[str, Any]) -> None:
        next(t for t in raw["treatments"] if t["id"] == "buprenorphine").pop("order_product")

    # no product in the data: no replacement is proposed (the order is only removed)
    assert _replace_suggestion(load_kb(kb_with(tmp_path / "b", "care.yaml", drop))) is None


# --- a tramadol order whose dose cannot be read: the care statement ---------------------------


def _dose_not_read(kb: KnowledgeBase, has_dosage: bool) -> dict[str, Any]:
    a, _, _ = hooks.assess({"patientId": "p1"}, kb, assemble(_prefetch(), {}), [], now=NOW, record=False)
    order = cards.DraftOrder("d1", ("tramadol",), None, "tramadol 50 mg tablet", has_dosage=has_dosage)
    found = [c for c in cards.tramadol_order_cards(a, [order], "Patient/p1") if "dose not checked" in c["summary"]]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("has_dosage", [True, False])
def test_the_dose_not_read_card_says_and_cites_the_care_statement(has_dosage: bool) -> None:
    kb = default_kb()
    advice = kb.statement(cards.DOSE_NOT_READ)
    card = _dose_not_read(kb, has_dosage)
    assert card["indicator"] == ("warning" if has_dosage else "info")
    assert f"tramadol 50 mg tablet: {advice.text}" in card["detail"]
    assert "400 mg/day" in card["detail"]  # this patient's limit, from the dose limit
    assert all(kb.sources[s].title in card["detail"] for s in advice.sources)
    assert "by hand" not in card["detail"].replace(advice.text, "")  # no advice of the code's own


def test_the_dose_not_read_card_follows_the_data(tmp_path: Path) -> None:
    def change(raw: dict[str, Any]) -> None:
        st = next(s for s in raw["statements"] if s["id"] == cards.DOSE_NOT_READ)
        st.update(text="Changed advice for the test.", sources=["openfda_tramadol_labels"])

    kb = load_kb(kb_with(tmp_path, "care.yaml", change))
    card = _dose_not_read(kb, True)
    assert "tramadol 50 mg tablet: Changed advice for the test." in card["detail"]
    assert kb.sources["openfda_tramadol_labels"].title in card["detail"]
