"""Questions over the example corpus, each with the documents that answer it.

Written from the documents' text (examples/docs) before the answerability decision was tuned,
three or so per document, and not pruned afterwards: a question a user may read an answer to
must be answered, and one whose every answering document the user may not read must abstain
(tests/answers/test_answerability_e2e.py asks all of them as every example user).
"""

from __future__ import annotations

WELCOME = "handbook:welcome.md"
HOLIDAYS = "handbook:holidays-2026.html"
EXPENSES = "handbook:expenses-policy.pdf"
SECURITY = "handbook:it-security.txt"
SALARY = "hr:salary-bands.docx"
PARENTAL = "hr:parental-leave.md"
ONBOARDING = "hr:onboarding-checklist.txt"
ARCHITECTURE = "engineering:architecture-overview.md"
INCIDENT = "engineering:incident-2026-03.eml"
RUNBOOK = "engineering:platform/oncall-runbook.md"
BUDGET = "finance:reports/q3-budget.html"
BOARD = "finance:board/kestrel-acquisition.docx"
NDA = "legal:nda-template.docx"
HOLD = "legal:litigation-hold.eml"

# question → the documents whose text answers it (empty: no ingested document does)
QUESTIONS: dict[str, frozenset[str]] = {
    "Where is the office and when was the company founded?": frozenset({WELCOME}),
    "Who founded Larkspur Instruments?": frozenset({WELCOME}),
    "What time is lunch served in the staff restaurant?": frozenset({WELCOME}),
    "How many sensors did we ship in 2025?": frozenset({WELCOME}),
    "How many days of annual leave do we get?": frozenset({HOLIDAYS}),
    "How many unused vacation days can be carried over into 2027?": frozenset({HOLIDAYS}),
    "When do I need a doctor's note for sick leave?": frozenset({HOLIDAYS}),
    "What is the daily meal limit when travelling?": frozenset({EXPENSES}),
    "How soon are approved expense claims reimbursed?": frozenset({EXPENSES}),
    "What is the hotel limit per night in Finland?": frozenset({EXPENSES}),
    "What is the mileage rate for using my own car?": frozenset({EXPENSES}),
    "Where do I report phishing emails?": frozenset({SECURITY}),
    "How long must my password passphrase be?": frozenset({SECURITY}),
    "How quickly must I report a lost laptop?": frozenset({SECURITY}),
    "What is the salary range of band L3?": frozenset({SALARY}),
    "How big is the pay increase on promotion to the next level?": frozenset({SALARY}),
    "What is the salary band for an L5 director?": frozenset({SALARY}),
    "How much parental leave does each parent get?": frozenset({PARENTAL}),
    "How long is pregnancy leave?": frozenset({PARENTAL}),
    "How much notice must an employee give before parental leave?": frozenset({PARENTAL}),
    "How early must a new hire's laptop be ordered?": frozenset({ONBOARDING}),
    "How long is the probation period for permanent employees?": frozenset({ONBOARDING}),
    "On which day of the month is salary paid?": frozenset({ONBOARDING}),
    "Who owns the telemetry ingest service?": frozenset({ARCHITECTURE, INCIDENT}),
    "How many partitions does the raw-readings Kafka topic have?": frozenset({ARCHITECTURE}),
    "How long is raw sensor data kept?": frozenset({ARCHITECTURE}),
    "What is the availability objective of the customer API?": frozenset({ARCHITECTURE}),
    "How long was the March 2026 telemetry ingest outage?": frozenset({INCIDENT}),
    "How many readings were permanently lost in the March outage?": frozenset({INCIDENT}),
    "What caused the telemetry ingest outage?": frozenset({INCIDENT}),
    "To whom is an unmitigated SEV1 escalated?": frozenset({RUNBOOK}),
    "How much is on-call compensation per week?": frozenset({RUNBOOK}),
    "When does the on-call hand-over happen?": frozenset({RUNBOOK}),
    "What is the total Q3 2026 operating budget?": frozenset({BUDGET}),
    "What is the research and development budget for Q3?": frozenset({BUDGET}),
    "What exchange rate is assumed for US dollar sales?": frozenset({BUDGET}),
    "What price is planned for the acquisition and when is signing?": frozenset({BOARD}),
    "Which company are we acquiring?": frozenset({BOARD}),
    "How is the acquisition financed?": frozenset({BOARD}),
    "How long does the NDA stay in force?": frozenset({NDA}),
    "Which law governs the mutual non-disclosure agreement?": frozenset({NDA}),
    "From what date must documents on the Aurora supplier dispute be preserved?":
        frozenset({HOLD}),
    "Who is our outside counsel in the Aurora dispute?": frozenset({HOLD}),
    "By when must the litigation hold be acknowledged?": frozenset({HOLD}),
    "What about the office plants and the fiddle-leaf fig?": frozenset(),
}
