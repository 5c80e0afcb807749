"""Follow-ups made standalone: by rules without an LLM, by the (fake) LLM with one."""

from __future__ import annotations

import pytest

from answers.conversation import Question, Turn
from answers.llm import LlmClient
from answers.redaction import Redactor
from answers.settings import LlmSettings, RedactionSettings
from answers.standalone import StandaloneRewriter, is_follow_up, rules_standalone
from tests.answers.followups import FOLLOW_UPS, FollowUp
from tests.fakes.openai_server import fake_llm


def conversation(case: FollowUp) -> Question:
    history = tuple(t for q in case.turns[:-1]
                    for t in (Turn("user", q), Turn("assistant", "An earlier answer.")))
    return Question(case.turns[-1], history)


def redactor(tmp_path) -> Redactor:
    return Redactor(RedactionSettings(), tmp_path / "redaction.key")


@pytest.mark.parametrize("case", FOLLOW_UPS, ids=lambda c: c.turns[-1])
def test_rules_make_each_follow_up_standalone(case: FollowUp):
    assert is_follow_up(case.turns[-1])
    standalone = rules_standalone(conversation(case), history_turns=2).lower()
    for word in case.expect:
        assert word in standalone, (standalone, word)
    assert any(word not in case.turns[-1].lower() for word in case.expect)  # from earlier


@pytest.mark.parametrize("text", ["How long does the NDA stay in force?",
                                  "Where do I report phishing emails?",
                                  "What is the total Q3 2026 operating budget?"])
def test_a_question_that_stands_alone_is_searched_as_asked(text: str, tmp_path):
    question = Question(text, (Turn("user", "What is the daily meal limit when travelling?"),))
    assert not is_follow_up(text)
    rewritten = StandaloneRewriter(history_turns=2, llm=None, redactor=redactor(tmp_path)
                                   ).rewrite(question)
    assert (rewritten.search_text(), rewritten.method) == (text, "as_asked")


def test_no_earlier_turns_or_history_turns_zero_leave_the_question_as_asked(tmp_path):
    case = FOLLOW_UPS[0]
    rewriter = StandaloneRewriter(history_turns=0, llm=None, redactor=redactor(tmp_path))
    assert rewriter.rewrite(conversation(case)).search_text() == case.turns[-1]
    rewriter = StandaloneRewriter(history_turns=2, llm=None, redactor=redactor(tmp_path))
    assert rewriter.rewrite(Question(case.turns[-1])).method == "as_asked"
    assert rewriter.rewrite(conversation(case)).method == "rules"


def test_the_llm_rewrites_the_follow_up_from_the_earlier_questions_redacted(tmp_path):
    with fake_llm(lambda messages: "Question: What is the hotel limit per night?\n") as llm:
        client = LlmClient(LlmSettings(provider="openai", base_url=llm.url, model="fake",
                                       timeout_s=5, max_tokens=64))
        rewriter = StandaloneRewriter(history_turns=2, llm=client, redactor=redactor(tmp_path))
        question = Question("And the hotel limit?", (
            Turn("user", "What is the meal limit? Mail me at ann@larkspur.example"),
            Turn("assistant", "45 EUR per day.")))
        rewritten = rewriter.rewrite(question)
        rewriter.close()
    assert (rewritten.search_text(), rewritten.method) == ("What is the hotel limit per night?",
                                                           "llm")
    [request] = llm.requests
    assert request["max_tokens"] == 64
    sent = "\n".join(m["content"] for m in request["messages"])
    assert "And the hotel limit?" in sent and "What is the meal limit?" in sent
    assert "ann@larkspur.example" not in sent and "45 EUR" not in sent  # no assistant turns


@pytest.mark.parametrize("failure", ["status", "empty", "unrelated"])
def test_a_failing_llm_falls_back_to_the_rules(failure: str, tmp_path):
    replies = {"status": "x", "empty": "", "unrelated": "See the source [1]."}
    with fake_llm(lambda messages: replies[failure]) as llm:
        if failure == "status":
            llm.status = 500
        client = LlmClient(LlmSettings(provider="openai", base_url=llm.url, model="fake",
                                       timeout_s=5))
        rewriter = StandaloneRewriter(history_turns=2, llm=client, redactor=redactor(tmp_path))
        rewritten = rewriter.rewrite(conversation(FOLLOW_UPS[0]))
        rewriter.close()
    assert rewritten.method == "rules"
    assert "hotel limit" in rewritten.search_text()
