"""The interaction checker and the patient model skip the same words beside a drug name: the
vocabulary's product words (dose forms, routes, salts, units) and doses; any other word is named."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.knowledge.loader import KnowledgeBase, default_kb
from withdrawal.safety.interactions import resolve_names

KB = default_kb()
PRODUCT = st.sampled_from(KB.vocabulary.product_words)
# generic names the vocabulary knows, one word each (so a product word beside them never joins a longer name)
NAMES = st.sampled_from(sorted(d.name.lower() for d in KB.vocabulary.drugs if d.name.isalpha()))
DOSES = st.sampled_from(["50", "0.5mg", "10/325", "1,000", "5%", "12mcg"])


def _both(text: str, kb: KnowledgeBase) -> tuple[tuple[set[str], list[str]], tuple[set[str], tuple[str, ...]]]:
    found, unknown = resolve_names(text, kb)
    med = kb.resolve_medication(None, text)
    return ({i for _, ids in found for i in ids}, unknown), (set(med.drugs), med.unscreened)


def test_the_checker_has_no_word_list_of_its_own() -> None:
    import withdrawal.safety.interactions as checker

    assert not hasattr(checker, "_NOT_A_NAME")
    assert all(KB.product_word(w) for w in ("po", "IV", "im", "sl", "sulphate", "HCl", "tablets"))


@settings(max_examples=300, deadline=None)
@given(NAMES, st.lists(st.one_of(PRODUCT, DOSES), min_size=1, max_size=4), st.booleans())
def test_product_words_are_skipped_alike(name: str, extra: list[str], before: bool) -> None:
    text = " ".join([*extra, name] if before else [name, *extra])
    (checker_ids, checker_unknown), (model_ids, model_unscreened) = _both(text, KB)
    assert checker_unknown == [] and model_unscreened == (), text
    assert checker_ids == model_ids == set(KB.lookup_drug(name)), text


@settings(max_examples=200, deadline=None)
@given(NAMES, st.lists(PRODUCT, max_size=3), st.sampled_from(["zorblax", "blorp", "qwzx"]))
def test_any_other_word_is_named_by_both(name: str, extra: list[str], other: str) -> None:
    text = " ".join([name, *extra, other])
    (checker_ids, checker_unknown), (model_ids, model_unscreened) = _both(text, KB)
    assert checker_ids == model_ids, text
    assert other in " ".join(checker_unknown).split() and other in model_unscreened, text


@settings(max_examples=100, deadline=None)
@given(PRODUCT)
def test_each_product_word_in_any_case(word: str) -> None:
    for w in (word, word.upper(), word.capitalize()):
        assert KB.product_word(w)
        (_, checker_unknown), (_, model_unscreened) = _both(f"methadone {w}", KB)
        assert checker_unknown == [] and model_unscreened == (), w
