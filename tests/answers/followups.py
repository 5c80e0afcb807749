"""Follow-up conversations over the example corpus (examples/docs), for tests and evaluation.

Each case is two or three user turns asked by one example user; the last turn depends on the
earlier ones, and `doc_id` names the document it is about, one the user may read
(examples/README.md). `expect` are words the standalone question made by rules must contain,
which the follow-up as asked does not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FollowUp:
    user: str
    turns: tuple[str, ...]  # user messages, oldest first; the last is the follow-up
    doc_id: str  # the document the follow-up is about
    expect: tuple[str, ...]  # in the rules' standalone question, case ignored


FOLLOW_UPS: tuple[FollowUp, ...] = (
    FollowUp("dave", ("What is the daily meal limit when travelling?", "And the hotel limit?"),
             "handbook:expenses-policy.pdf", ("hotel limit", "travelling")),
    FollowUp("dave", ("What is the daily meal limit when travelling?", "And the hotel limit?",
                      "What about abroad?"),
             "handbook:expenses-policy.pdf", ("hotel limit", "abroad")),
    FollowUp("dave", ("How many days of annual leave do we get?",
                      "And when are summer requests due?"),
             "handbook:holidays-2026.html", ("annual leave", "summer")),
    FollowUp("dave", ("Where is the office?", "When was it founded?"),
             "handbook:welcome.md", ("office", "founded")),
    FollowUp("alice", ("What is the salary range of band L3?", "What about L5?"),
             "hr:salary-bands.docx", ("salary range", "l5")),
    FollowUp("alice", ("How much parental leave does each parent get?",
                       "And how much of it is paid at full salary?"),
             "hr:parental-leave.md", ("parental leave", "full salary")),
    FollowUp("bob", ("Who owns the telemetry ingest service?",
                     "How long was its outage in March 2026?"),
             "engineering:incident-2026-03.eml", ("telemetry ingest", "outage")),
    FollowUp("bob", ("To whom is an unmitigated SEV1 escalated?", "After how many minutes?"),
             "engineering:platform/oncall-runbook.md", ("sev1", "minutes")),
    FollowUp("carol", ("What is the total Q3 2026 operating budget?", "And the R&D budget?"),
             "finance:reports/q3-budget.html", ("r&d budget", "total")),
    FollowUp("erin", ("How long does the NDA stay in force?", "And which law governs it?"),
             "legal:nda-template.docx", ("nda", "law")),
    FollowUp("erin", ("From what date must documents on the Aurora supplier dispute be "
                      "preserved?", "And by when must it be acknowledged?"),
             "legal:litigation-hold.eml", ("aurora", "acknowledged")),
    FollowUp("dave", ("How soon are approved expense claims paid?",
                      "And who approves those claims?"),
             "handbook:expenses-policy.pdf", ("expense claims", "approves")),
)
