"""CLI (``withdrawal meta``, ``withdrawal evidence``) and the cited evidence data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from withdrawal.cli import app
from withdrawal.evidence.summary import build_summary
from withdrawal.knowledge.evidence import (
    iter_statements,
)
from withdrawal.knowledge.loader import default_kb

runner = CliRunner()
JSON_FIELDS = {"estimate", "se", "ci_low", "ci_high", "statistic", "p", "tau2", "i2", "h2",
               "q", "q_p", "pi_low", "pi_high"}


def _bcg(data_dir: Path) -> str:
    return str(data_dir / "reference" / "meta" / "bcg.csv")


def test_meta_json_matches_metafor_reml_knha(data_dir: Path) -> None:
    result = runner.invoke(app, ["meta", _bcg(data_dir), "--measure", "RR", "--method",
                                 "REML", "--test", "knha", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert JSON_FIELDS <= out.keys()
    # metafor 3.8-1, dat.bcg, rma(measure="RR", method="REML", test="knha")
    assert out["estimate"] == pytest.approx(-0.714532348365101, rel=1e-5)
    assert out["back_transformed"]["estimate"] == pytest.approx(0.48942, rel=1e-4)


def test_meta_text_and_plot(data_dir: Path, tmp_path: Path) -> None:
    plot = tmp_path / "f.svg"
    result = runner.invoke(app, ["meta", _bcg(data_dir), "--method", "DL", "--plot",
                                 str(plot)])
    assert result.exit_code == 0, result.output
    assert "estimate" in result.output and plot.read_text().startswith("<?xml")


def test_meta_generic_yi_vi(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("study,yi,vi\nA,0.1,0.01\nB,0.3,0.02\n")
    result = runner.invoke(app, ["meta", str(data), "--measure", "GEN", "--method", "FE",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pi_low"] is None


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        ("study,yi\nA,0.1\n", ["--measure", "GEN"], "vi"),
        ("study,yi,vi\nA,0.1,abc\n", ["--measure", "GEN"], "row 2"),
        ("study,yi,vi\n", ["--measure", "GEN"], "no studies"),
        ("study,yi,vi\nA,0.1,0.1\n", ["--measure", "RR"], "events_treatment"),
    ],
)
def test_meta_bad_input_exits_2_naming_the_problem(
    tmp_path: Path, content: str, args: list[str], needle: str
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content)
    result = runner.invoke(app, ["meta", str(data), *args])
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_meta_bad_plot_suffix_exits_2(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["meta", _bcg(data_dir), "--plot", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "png" in result.output


def test_evidence_json_and_plots(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evidence", "--format", "json", "--plot-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {a["id"] for a in out["analyses"]} >= {"completion_vs_buprenorphine"}
    assert (tmp_path / "forest_tramadol.png").stat().st_size > 10_000
    assert (tmp_path / "forest_tramadol.svg").exists()


def test_evidence_text_lists_verdicts() -> None:
    result = runner.invoke(app, ["evidence"])
    assert result.exit_code == 0, result.output
    assert "abuse" in result.output and "ev_dunn2017" in result.output


def test_every_trial_and_statement_cites_a_registered_source() -> None:
    kb = default_kb()
    sources, base, data = kb.sources, kb.trials, kb.evidence_summary
    cited = [*base.trials, *base.reviews, *(s for _, s in iter_statements(data))]
    assert cited
    for entry in cited:
        assert entry.sources and all(s in sources for s in entry.sources), entry


def test_evidence_sources_are_prefixed_and_unique() -> None:
    from withdrawal.knowledge.base import SourceRegistry, data_dir, read_yaml, validate

    path = data_dir() / "sources_evidence.yaml"
    reg = validate(SourceRegistry, read_yaml(path), path.name)
    assert all(s.id.startswith("ev_") for s in reg.sources)
    assert all(s.id in default_kb().sources for s in reg.sources)  # merged (a duplicate id fails the load)


def test_pooled_buprenorphine_comparison_uses_reported_counts() -> None:
    summary = build_summary()
    bup = next(a for a in summary.analyses if a.analysis.comparator == "buprenorphine")
    counts = {(r.events_tramadol, r.total_tramadol, r.events_comparator, r.total_comparator)
              for r in bup.rows}
    assert counts == {(26, 36, 28, 31), (18, 31, 21, 31)}
    clo = next(a for a in summary.analyses if a.analysis.comparator == "clonidine")
    assert not clo.pooled and clo.result.k == 1
