"""Calibration questions over the example corpus for bench/fit_answerability.py.

Apart from the test set (tests/answers/answerable_questions.py): different facts of the same
documents, so the fitted model is judged there on questions it was not fitted on.
"""

from __future__ import annotations

from tests.answers.answerable_questions import (
    ARCHITECTURE,
    BOARD,
    BUDGET,
    EXPENSES,
    HOLD,
    HOLIDAYS,
    INCIDENT,
    NDA,
    ONBOARDING,
    PARENTAL,
    RUNBOOK,
    SALARY,
    SECURITY,
    WELCOME,
)

CALIBRATION: dict[str, frozenset[str]] = {
    "How many employees does the company have?": frozenset({WELCOME}),
    "What products does Larkspur make?": frozenset({WELCOME}),
    "When are the office opening hours?": frozenset({WELCOME}),
    "What was our revenue in 2025?": frozenset({WELCOME}),
    "Is the office closed at Christmas?": frozenset({HOLIDAYS}),
    "By when must summer leave requests be entered?": frozenset({HOLIDAYS}),
    "How much leave do part-time employees get?": frozenset({HOLIDAYS}),
    "Is alcohol reimbursed on business trips?": frozenset({EXPENSES}),
    "Who approves expense claims above 2,000 EUR?": frozenset({EXPENSES}),
    "Can I fly business class?": frozenset({EXPENSES}),
    "How much may client entertainment cost per person?": frozenset({EXPENSES}),
    "Is MFA mandatory for email?": frozenset({SECURITY}),
    "After how many minutes does the screen lock?": frozenset({SECURITY}),
    "Are SMS codes accepted for multi-factor authentication?": frozenset({SECURITY}),
    "When are salaries reviewed?": frozenset({SALARY}),
    "Where are new hires placed in the salary band?": frozenset({SALARY}),
    "Does annual leave accrue during parental leave?": frozenset({PARENTAL}),
    "Who pays the salary during the first 60 days of parental leave?": frozenset({PARENTAL}),
    "When does HR contact an employee before they return from leave?": frozenset({PARENTAL}),
    "When is a new employee greeted on the first day?": frozenset({ONBOARDING}),
    "Which online courses are mandatory in the first week?": frozenset({ONBOARDING}),
    "How many readings per minute does Prism receive?": frozenset({ARCHITECTURE}),
    "Which clusters run the Prism services?": frozenset({ARCHITECTURE}),
    "Who owns the dashboard service?": frozenset({ARCHITECTURE}),
    "How many customers saw gaps in their dashboards during the outage?": frozenset({INCIDENT}),
    "Who was the primary on-call during the March incident?": frozenset({INCIDENT}),
    "How many engineers are in the on-call rotation?": frozenset({RUNBOOK}),
    "Within how many days must a postmortem be written?": frozenset({RUNBOOK}),
    "What is the planned revenue for Q3 2026?": frozenset({BUDGET}),
    "How much are Prism cloud costs budgeted at?": frozenset({BUDGET}),
    "How many employees does the acquisition target have?": frozenset({BOARD}),
    "When is the board decision meeting on the acquisition?": frozenset({BOARD}),
    "How long do NDA confidentiality obligations survive?": frozenset({NDA}),
    "Who approved the NDA template?": frozenset({NDA}),
    "Who are the custodians in the litigation hold?": frozenset({HOLD}),
    "How much did we withhold in payments to Aurora?": frozenset({HOLD}),
    "What is the canteen menu on Fridays?": frozenset(),
    "How do I book a parking space?": frozenset(),
    "What is the dress code at the office?": frozenset(),
}
