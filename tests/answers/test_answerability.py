"""The answerability decision's parts: what a question asks for, word coverage, the model file,
and the LLM's "not in sources"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from answers.answer import abstain_text
from answers.answerability import (
    FEATURES,
    AnswerabilityModel,
    Coverage,
    expected_type,
    holds_type,
)
from answers.prompt import says_not_in_sources
from answers.terms import question_terms, text_stems, word_weight


@pytest.mark.parametrize(("question", "kind"), [
    ("How much parental leave does each parent get?", "number"),
    ("How long is pregnancy leave?", "number"),
    ("What is the hotel limit per night in Finland?", "number"),
    ("When does the on-call hand-over happen?", "time"),
    ("From what date must documents be preserved?", "time"),
    ("Who owns the telemetry ingest service?", "name"),
    ("To whom is an unmitigated SEV1 escalated?", "name"),
    ("Where do I report phishing emails?", "place"),
    ("Which law governs the agreement?", None),
    ("ALDH1 expression is associated with poorer prognosis in breast cancer.", None),
])
def test_what_a_question_asks_for(question: str, kind: str | None):
    assert expected_type(question) == kind


def test_a_unit_holds_the_kind_of_answer_asked_for():
    assert holds_type("Each parent is entitled to 160 working days of leave.", "number")
    assert not holds_type("Parental leave is described in separate HR documents.", "number")
    assert holds_type("Hand-over happens every Monday at 10:00.", "time")
    assert holds_type("For absences of up to three days no note is needed.", "time")
    assert holds_type("The service owner is Tuomas Laine.", "name")
    assert not holds_type("the service is owned by the platform team.", "name")
    assert holds_type("anything at all", None)


def test_rare_words_weigh_more_than_common_ones():
    assert word_weight("telemetry") > word_weight("service") > word_weight("the")
    assert "the" not in question_terms("Who owns the service?")
    assert question_terms("Who owns it?") == question_terms("who OWNS it")


def test_coverage_counts_stems_acronyms_and_negated_roots():
    coverage = Coverage("Who owns the telemetry ingest service?")
    text = "Telemetry ingest is owned by Tuomas Laine, service owner."
    share, missing = coverage.of(text_stems(text), text)
    assert share == 1.0 and missing == 0.0
    share, missing = coverage.of(text_stems("The service is owned by Tuomas."), "")
    assert share < 0.5 and missing == word_weight("ingest")

    nda = Coverage("How long does the NDA stay in force?")
    title = "Mutual Non-Disclosure Agreement: it stays in force for a long 3 years."
    assert nda.of(text_stems(title), title) == (1.0, 0.0)
    other = "The agreement stays in force for a long 3 years."
    assert nda.of(text_stems(other), other)[1] == word_weight("nda")

    negated = Coverage("To whom is an unmitigated SEV1 escalated?")
    text = "If a SEV1 is not mitigated within 20 minutes, escalate to the lead."
    assert negated.of(text_stems(text), text)[1] == 0.0


def test_the_shipped_model_matches_the_features(tmp_path: Path):
    model = AnswerabilityModel.load()
    assert len(model.weights) == len(FEATURES) and 0.0 < model.threshold < 1.0
    # strong evidence is answerable, none is not
    strong = {"chunk_similarity": 0.7, "unit_similarity": 0.75, "unit_coverage": 1.0,
              "unit_missing": 0.0, "evidence_coverage": 1.0, "evidence_missing": 0.0,
              "typed_coverage": 1.0, "typed_missing": 0.0}
    weak = {"chunk_similarity": 0.3, "unit_similarity": 0.2, "unit_coverage": 0.0,
            "unit_missing": 8.0, "evidence_coverage": 0.0, "evidence_missing": 8.0,
            "typed_coverage": 0.0, "typed_missing": 8.0}
    assert model.probability([strong[f] for f in FEATURES]) >= model.threshold
    assert model.probability([weak[f] for f in FEATURES]) < model.threshold

    stale = tmp_path / "model.json"
    data = json.loads(Path("answers/answerability_model.json").read_text())
    stale.write_text(json.dumps({**data, "features": ["chunk_similarity"]}))
    with pytest.raises(ValueError, match=r"refit it with bench/fit_answerability\.py"):
        AnswerabilityModel.load(stale)


@pytest.mark.parametrize(("reply", "abstains"), [
    ("NOT IN SOURCES", True),
    ("not in sources.", True),
    ("The sources do not answer this question.", True),
    ("The provided sources don't mention the hotel limit.", True),
    ("None of the sources mentions it.", True),
    ("Hotels may cost at most 160 EUR per night [1].", False),
    ("The sources say the limit is 45 EUR [2].", False),
])
def test_an_llm_reply_that_says_the_sources_do_not_answer(reply: str, abstains: bool):
    assert says_not_in_sources(reply) is abstains


def test_an_abstention_names_owners_and_how_to_ask_for_access():
    text = abstain_text(["people-ops"], None)
    assert text.startswith("Not found in the sources you can access.")
    assert "people-ops" in text and "for access" in text
    custom = abstain_text([], "open a ticket at https://it.example.com/access")
    assert "open a ticket at https://it.example.com/access" in custom
    assert "kept by" not in custom
