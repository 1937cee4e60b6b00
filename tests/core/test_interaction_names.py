"""The interaction checker resolves or lists every name, names separated by spaces included."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from withdrawal.knowledge.loader import KnowledgeBase
from withdrawal.safety.interactions import check_interactions, resolve_names


def test_space_separated_names_each_resolved_or_listed(kb: KnowledgeBase) -> None:
    found, unknown = resolve_names("Zoloft Xanax methadone zorblaxamine", kb)
    assert [ids for _, ids in found] == [("sertraline",), ("alprazolam",), ("methadone",)]
    assert unknown == ["zorblaxamine"]
    report = check_interactions(["Zoloft Xanax methadone zorblaxamine"], kb)
    assert report.unrecognised == ("zorblaxamine",)
    assert {"sertraline", "alprazolam", "methadone"} <= set(report.drugs)


def test_multi_word_names_doses_and_unknown_runs(kb: KnowledgeBase) -> None:
    assert resolve_names("St John's wort", kb)[0][0][1] == ("st_johns_wort",)  # the longest known run wins
    assert resolve_names("tramadol hydrochloride 50 mg", kb) == ([("tramadol", ("tramadol",))], [])
    found, unknown = resolve_names("blue pill sertraline 50mg green thing", kb)
    assert [ids for _, ids in found] == [("sertraline",)]
    assert unknown == ["blue pill", "green thing"]  # a run of unknown words is one entry


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["Zoloft", "Xanax", "methadone", "tramadol", "qwzx", "50", "mg", "St", "John's", "wort", "fooby"]
        ),
        max_size=8,
    )
)
def test_no_word_is_dropped(kb: KnowledgeBase, words: list[str]) -> None:
    text = " ".join(words)
    found, unknown = resolve_names(text, kb)
    covered = " ".join([name for name, _ in found] + unknown).split()
    for w in words:
        if w not in ("50", "mg"):
            assert w in covered, (text, found, unknown)


def test_an_excluded_options_reason_cites_its_own_sources(kb: KnowledgeBase) -> None:
    """The MAOI contraindication that takes tramadol out cites the label, not an efficacy trial."""
    from withdrawal.assess import assess_patient
    from withdrawal.patient import parse_patient

    a = assess_patient(parse_patient({"version": 1, "age_years": 40, "opioid": {"substance": "heroin"},
                                      "medications": [{"name": "phenelzine", "status": "stopped",
                                                       "days_since_stopped": 5}]}), kb)
    (tramadol,) = [e for e in a.plan.excluded if e.treatment == "tramadol"]
    maoi = next(f for f in a.screen.findings if f.code == "maoi")
    assert set(tramadol.sources) == set(maoi.sources)
    assert "dunn_2017" not in tramadol.sources


def test_cli_lists_every_name_of_a_quoted_list() -> None:
    import json

    from typer.testing import CliRunner

    from withdrawal.cli import app

    result = CliRunner().invoke(app, ["interactions", "Zoloft Xanax methadone blorp", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"sertraline", "alprazolam", "methadone"} <= set(out["drugs"]) and out["unrecognised"] == ["blorp"]


def test_combination_products_and_lists_resolve_each_ingredient(kb: KnowledgeBase) -> None:
    # "tramadol/acetaminophen" is how combination products are written (Ultracet); the patient model reads
    # both ingredients, so the interaction checker must too. Numbers keep their separators.
    assert resolve_names("tramadol/acetaminophen", kb) == (
        [("tramadol", ("tramadol",)), ("acetaminophen", ("acetaminophen",))], [])
    assert [ids for _, ids in resolve_names("sertraline,fluoxetine", kb)[0]] == [("sertraline",), ("fluoxetine",)]
    assert resolve_names("oxycodone 10/325 mg", kb) == ([("oxycodone", ("oxycodone",))], [])
    assert resolve_names("1,000 mg acetaminophen", kb) == ([("acetaminophen", ("acetaminophen",))], [])

