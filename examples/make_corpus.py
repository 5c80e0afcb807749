"""Regenerate the binary and e-mail documents of the Larkspur Instruments example corpus.

The generated files are committed under examples/docs/; this script is NOT run at install
time and is not a dependency of Clearance. It only exists so the corpus can be rebuilt.

Needs, in a throw-away virtual environment (never the project's .venv):

    fpdf2==2.8.9        (PDF with a real text layer)
    python-docx==1.2.0  (Word documents; pulls in lxml)
    pypdf==7.1.0        (optional, only for the --check read-back)

Run from the repository root:

    python3 -m venv /tmp/corpusgen
    /tmp/corpusgen/bin/pip install fpdf2==2.8.9 python-docx==1.2.0 pypdf==7.1.0
    /tmp/corpusgen/bin/python examples/make_corpus.py          # write the files
    /tmp/corpusgen/bin/python examples/make_corpus.py --check  # write, then print their text

It writes:

    docs/handbook/expenses-policy.pdf           (3 pages, one topic per page)
    docs/hr/salary-bands.docx
    docs/finance/board/kestrel-acquisition.docx (the confidential single-reader document)
    docs/legal/nda-template.docx
    docs/engineering/incident-2026-03.eml       (RFC 5322, CRLF line endings)
    docs/legal/litigation-hold.eml

The .md, .txt and .html documents are written by hand and are not produced here.

The board document's two canary strings (the target company's name and the project code)
are stored ROT13-encoded below, so that a plain-text search of the repository finds them
only inside the generated board document and never in this script.
"""

from __future__ import annotations

import codecs
import datetime as dt
import sys
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

DOCS = Path(__file__).resolve().parent / "docs"

# Canary strings of the confidential board document, ROT13-encoded (see the module docstring).
TARGET = codecs.decode("Oevtugjngre Bcgvpf", "rot13")
CODE = codecs.decode("XRFGERY-4417", "rot13")

EET = dt.timezone(dt.timedelta(hours=2))
FIXED_DATE = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------- PDF


EXPENSES_PAGES: list[tuple[str, list[str]]] = [
    (
        "1. Travel",
        [
            "This policy applies to all Larkspur Instruments employees who travel or spend "
            "money on behalf of the company. It is owned by Mikael Lindqvist, Chief Financial "
            "Officer, and is effective from 1 January 2026. Each page of this document covers "
            "one topic: travel on this page, meals on page 2, and approvals and reimbursement "
            "on page 3.",
            "Book all flights, trains and hotels through the company travel portal. Bookings "
            "made elsewhere are reimbursed only if they were at least 10% cheaper than the "
            "portal price for the same trip, and a screenshot of the comparison is attached.",
            "Take the train for trips between Tampere and Helsinki. Economy class is the rule "
            "for all flights shorter than 6 hours; business class requires the approval of "
            "the CFO in advance.",
            "Hotels may cost at most 160 EUR per night in Finland and 200 EUR per night abroad, "
            "including breakfast. Use the company's partner hotels where available.",
            "Use of your own car for business trips is reimbursed at 0.59 EUR per kilometre, "
            "as set by the Finnish Tax Administration for 2026. Record the start point, the "
            "destination and the purpose of every trip. Taxis are allowed when public "
            "transport is impractical, for example late at night or with heavy equipment.",
        ],
    ),
    (
        "2. Meals",
        [
            "When you travel for work, Larkspur pays for your meals up to a limit of 45 EUR "
            "per day. The limit covers breakfast (if not included in the hotel price), lunch, "
            "dinner and snacks together; it is a daily limit, not a per-meal allowance, and "
            "unused amounts do not carry over to the next day.",
            "Instead of claiming actual meal costs you may claim the tax-free daily allowance "
            "for the trip. You cannot claim both for the same day.",
            "Alcohol is not reimbursed, except as part of client entertainment that was "
            "approved in advance.",
            "Client entertainment (meals with customers, partners or suppliers) is not counted "
            "against the 45 EUR limit. It must be approved in advance by your manager, may cost "
            "at most 90 EUR per person, and the receipt must list the names and companies of "
            "all guests.",
            "Team lunches and celebrations are paid from the team budget and are not expense "
            "claims. Ask your manager before booking.",
        ],
    ),
    (
        "3. Approvals and reimbursement",
        [
            "Submit every expense claim in the expense application within 30 days of the "
            "expense. Attach a photo or PDF of each receipt; paper receipts do not need to be "
            "kept after they have been uploaded.",
            "Your line manager approves claims of up to 2,000 EUR. Claims above 2,000 EUR also "
            "need the approval of your department director. Claims from directors are approved "
            "by the CFO. Nobody may approve their own claim.",
            "Approved claims are reimbursed within 14 days of approval, to the bank account "
            "registered in the HR system. Finance pays expense claims twice a month, so most "
            "claims are paid sooner.",
            "Claims submitted more than 90 days after the expense are not reimbursed unless the "
            "CFO grants an exception. Claims that break this policy are returned to the "
            "employee with a comment.",
            "Company credit cards are issued to employees who travel more than six times a "
            "year. Card transactions are matched to receipts in the same expense application "
            "within 30 days.",
            "Questions about this policy: finance@larkspur.example.",
        ],
    ),
]


def make_expenses_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title("Expenses policy 2026")
    pdf.set_author("Larkspur Instruments Finance")
    pdf.set_subject("Travel, meals, approvals and reimbursement")
    pdf.set_creator("examples/make_corpus.py")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(auto=False)
    for title, paragraphs in EXPENSES_PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(0, 6, "Larkspur Instruments - Expenses policy 2026", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font("Helvetica", "", 11)
        for para in paragraphs:
            pdf.multi_cell(0, 6, para, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        pdf.set_y(-20)
        pdf.set_font("Helvetica", "", 9)
        pdf.cell(0, 6, f"Page {pdf.page_no()} of {len(EXPENSES_PAGES)}", align="C")
    pdf.output(str(path))


# --------------------------------------------------------------------------- DOCX


def _new_docx(title: str, author: str):
    import docx

    doc = docx.Document()
    props = doc.core_properties
    props.title = title
    props.author = author
    props.last_modified_by = author
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1
    return doc


def make_salary_bands(path: Path) -> None:
    doc = _new_docx("Salary bands 2026", "Sanna Heikkinen")
    doc.add_heading("Salary bands 2026", level=0)
    doc.add_paragraph(
        "Owner: Sanna Heikkinen, Director of People and HR. Valid from 1 April 2026 until the "
        "next annual review in April 2027. Audience: HR team only. Do not share with managers "
        "or employees outside the HR group; managers receive the band of their own reports."
    )
    doc.add_heading("How the bands work", level=1)
    doc.add_paragraph(
        "Every role at Larkspur Instruments belongs to one of five levels, L1 to L5. Each level "
        "has a salary band: an annual gross base salary range in euros for a full-time "
        "employee, excluding bonus, on-call compensation and benefits. New hires are normally "
        "placed in the lower half of the band. The bands overlap on purpose, so that a strong "
        "performer at one level can earn more than a new colleague at the next level."
    )
    doc.add_heading("Bands by level", level=1)
    bands = [
        ("L1 - Associate", "34,000 to 42,000 EUR",
         "Entry-level roles: assemblers, junior technicians, graduates in their first two years."),
        ("L2 - Professional", "41,000 to 52,000 EUR",
         "Independent contributors: engineers, calibration technicians, accountants, buyers."),
        ("L3 - Senior", "50,000 to 64,000 EUR",
         "Senior engineers and specialists who lead work within a team and mentor others."),
        ("L4 - Lead", "62,000 to 80,000 EUR",
         "Team leads and principal engineers, for example the platform lead."),
        ("L5 - Director", "78,000 to 105,000 EUR",
         "Department directors reporting to the management team. Executive salaries are set "
         "by the board and are not part of this band structure."),
    ]
    for name, rng, desc in bands:
        doc.add_heading(name, level=2)
        p = doc.add_paragraph()
        p.add_run(f"Band {name.split(' ')[0]}: {rng} per year.").bold = True
        doc.add_paragraph(desc)
    doc.add_heading("Annual review", level=1)
    doc.add_paragraph(
        "Salaries are reviewed once a year in April. The 2026 review budget was 3.2% of the "
        "total salary cost. An employee below the minimum of their band is raised to the "
        "minimum at the next review. Salaries above the maximum of the band are not reduced, "
        "but they receive only one-off payments until the band catches up."
    )
    doc.add_heading("Promotions", level=1)
    doc.add_paragraph(
        "A promotion to the next level comes with an increase of at least 6% or a move to the "
        "minimum of the new band, whichever is higher. Promotions are proposed by the manager "
        "and approved by the department director and HR. Questions: hr@larkspur.example."
    )
    doc.save(str(path))


def make_board_memo(path: Path) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    doc = _new_docx("Board memorandum - strictly confidential", "Mikael Lindqvist")
    header = doc.sections[0].header.paragraphs[0]
    header.text = "STRICTLY CONFIDENTIAL - BOARD OF DIRECTORS ONLY"
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER

    p = doc.add_paragraph()
    p.add_run("CONFIDENTIAL").bold = True
    doc.add_heading(f"Project {CODE}: proposed acquisition of {TARGET}", level=0)
    doc.add_paragraph(
        "To: Board of Directors, Larkspur Instruments Oy. From: Mikael Lindqvist, CFO, and "
        "Helena Koskinen, CEO. Date: 3 November 2026. Distribution: restricted to the project "
        "insider list. Do not forward, print or discuss this memorandum with anyone who is "
        "not on that list."
    )
    doc.add_heading("Summary", level=1)
    doc.add_paragraph(
        f"Under the code name {CODE}, management proposes that Larkspur Instruments acquires "
        f"100% of the shares of {TARGET} Ltd, a maker of precision lens assemblies and optical "
        "coatings based in Cork, Ireland. The agreed purchase price is 38.5 million euros on a "
        "cash-free, debt-free basis. Signing of the share purchase agreement is planned for "
        "15 January 2027, with closing expected by 31 March 2027 after regulatory clearance."
    )
    doc.add_heading("The target", level=1)
    doc.add_paragraph(
        f"{TARGET} has 62 employees and reported revenue of 11.2 million euros in 2025, with "
        "an EBITDA margin of 18%. It has supplied the lens assemblies for our Spectra sensors "
        "since 2019 and is today our largest single optics supplier. Owning it would secure "
        "this supply and bring coating know-how that we currently lack."
    )
    doc.add_heading("Price and financing", level=1)
    doc.add_paragraph(
        "Of the 38.5 million euros, 31.0 million euros is paid in cash at closing and up to "
        "7.5 million euros as an earn-out over 2027 and 2028, tied to revenue targets. The cash "
        "payment is financed with 16.0 million euros of our own cash and a new 15.0 million "
        "euro term loan, for which two Nordic banks have provided indicative offers."
    )
    doc.add_heading("Timeline", level=1)
    for item in [
        "Confirmatory due diligence completed: 11 December 2026.",
        "Board decision meeting: 17 December 2026.",
        "Signing of the share purchase agreement: 15 January 2027.",
        "Announcement to employees of both companies: on the day of signing.",
        "Closing, after regulatory clearance: by 31 March 2027.",
    ]:
        doc.add_paragraph(item, style="List Bullet")
    doc.add_heading("Confidentiality", level=1)
    doc.add_paragraph(
        f"Information about {CODE} is strictly confidential. Only people on the insider list "
        "may know about the project, and they must use the code name in all communication. "
        "Any suspected leak must be reported immediately to the CFO and to Petra Salo, "
        "General Counsel."
    )
    doc.save(str(path))


def make_nda_template(path: Path) -> None:
    doc = _new_docx("Mutual non-disclosure agreement (template)", "Petra Salo")
    doc.add_heading("Mutual Non-Disclosure Agreement", level=0)
    doc.add_paragraph(
        "Template version 2026-1, approved by Petra Salo, General Counsel, on 19 January 2026. "
        "Use this template for discussions with customers, suppliers and partners. Changes to "
        "clauses 3 to 6 require the approval of the Legal team. Fill in the fields in square "
        "brackets."
    )
    doc.add_heading("Parties", level=1)
    doc.add_paragraph(
        "This agreement is made between Larkspur Instruments Oy, business ID 2412345-6, "
        "Tampere, Finland (\"Larkspur\") and [Counterparty name], [business ID], [address] "
        "(the \"Counterparty\"), each a \"Party\"."
    )
    clauses = [
        ("1. Purpose",
         "The Parties wish to exchange information for the purpose of [describe the purpose, "
         "for example evaluating a joint development of optical sensors] (the \"Purpose\")."),
        ("2. Confidential Information",
         "Confidential Information means all technical, commercial and financial information "
         "disclosed by a Party to the other Party, in any form, that is marked confidential or "
         "that a reasonable person would understand to be confidential."),
        ("3. Obligations",
         "The receiving Party shall use Confidential Information only for the Purpose, shall "
         "not disclose it to third parties, and shall protect it with at least the same degree "
         "of care as its own confidential information, and never less than reasonable care. "
         "Disclosure to employees and advisers is allowed on a need-to-know basis, provided "
         "they are bound by equivalent obligations."),
        ("4. Exceptions",
         "The obligations do not apply to information that is or becomes public without breach "
         "of this agreement, was lawfully known to the receiving Party before disclosure, is "
         "independently developed, or must be disclosed by law or court order."),
        ("5. Term",
         "This agreement enters into force when signed by both Parties and remains in force "
         "for 3 years. The confidentiality obligations survive for 5 years after the agreement "
         "ends. On request, the receiving Party shall return or destroy all Confidential "
         "Information."),
        ("6. Governing law and disputes",
         "This agreement is governed by the laws of Finland. Disputes shall be settled in the "
         "Pirkanmaa District Court in Tampere as the court of first instance."),
    ]
    for heading, text in clauses:
        doc.add_heading(heading, level=1)
        doc.add_paragraph(text)
    doc.add_heading("Signatures", level=1)
    doc.add_paragraph("For Larkspur Instruments Oy: ____________________  Date: __________")
    doc.add_paragraph("For [Counterparty name]: ____________________  Date: __________")
    doc.save(str(path))


# --------------------------------------------------------------------------- EML


INCIDENT_BODY = """\
Hi all,

Below is the postmortem for the telemetry ingest outage on Wednesday 18 March 2026.
It was reviewed in the platform meeting on Thursday 26 March. The full document with
graphs is in the platform wiki.

SUMMARY

On 18 March 2026 from 09:12 to 09:59 Finnish time, the Prism telemetry ingest service
rejected almost all incoming sensor batches. The outage lasted 47 minutes. It was a
SEV1 incident.

IMPACT

- About 108 million readings were rejected during the 47 minutes.
- Most sensors buffered their readings and resent them after recovery. About 3.9
  million readings from older Lumen sensors, which only buffer 30 minutes of data,
  were permanently lost.
- 212 customers saw gaps in their dashboards, and 64 alert rules did not fire on time.
- The customer API and dashboard stayed up; only ingest was affected.

ROOT CAUSE

A configuration change to prism-ingest lowered the limit on in-flight batches per pod
from 40000 to 4000. The intended change was an unrelated timeout; the limit was edited
by mistake in the same file. The configuration change was applied directly to both
clusters and did not go through the canary stage, because at the time configuration
changes were not part of the deployment pipeline. With the lower limit, every pod
rejected new batches within seconds.

TIMELINE (Finnish time, EET)

09:12  Configuration change applied to both clusters; reject rate rises to 97%.
09:18  Alert IngestRejectRateHigh fires; the primary on-call, Mira Kallio, is paged.
09:21  Mira acknowledges and opens the incident channel.
09:33  Not mitigated after 20 minutes of investigation; escalated to Jonas Virtanen.
09:41  Root cause identified: the in-flight limit in the new configuration.
09:52  Rollback of the configuration started in both clusters.
09:59  Reject rate back to normal; buffered readings start to arrive.
10:40  Replay backlog fully processed.

WHAT WENT WELL

- Buffering on newer sensors prevented most data loss.
- The rollback itself took only 7 minutes once the cause was known.

WHAT WENT WRONG

- Configuration changes bypassed the canary stage.
- The alert fired 6 minutes after the rejects started; the threshold was too slow.
- The runbook said to investigate before rolling back recent changes.

ACTION ITEMS

1. Route all prism-ingest configuration changes through the CI pipeline and canary
   stage. Owner: Tuomas Laine. Due 10 April 2026.
2. Lower the IngestRejectRateHigh threshold so it fires within 2 minutes.
   Owner: Mira Kallio. Due 3 April 2026.
3. Update the on-call runbook: roll back recent changes first, investigate second.
   Owner: Jonas Virtanen. Due 7 April 2026.
4. Firmware update to extend the Lumen buffer to 6 hours. Owner: Niko Jarvinen.
   Due 30 June 2026.

Thanks to everyone who helped during the incident.

Tuomas Laine
Service owner, prism-ingest
Larkspur Instruments
"""

HOLD_BODY = """\
PRIVILEGED AND CONFIDENTIAL - ATTORNEY-CLIENT COMMUNICATION

Dear colleagues,

This is a formal litigation hold notice concerning the dispute with our former supplier
Aurora Precision Components Oy (the "Aurora" supplier dispute).

BACKGROUND

Aurora supplied the sapphire windows used in our Spectra sensors until October 2025.
Several batches delivered between June and October 2025 had coating defects, and we
withheld payment of invoices totalling 1.2 million euros. On 4 February 2026 Aurora
filed a claim against Larkspur Instruments in the Pirkanmaa District Court. Our outside
counsel is Lahtinen & Co, with Anna Lahtinen as the responsible partner.

WHAT YOU MUST DO

With effect from today, 9 February 2026, you must preserve all documents and data
related to Aurora, dated from 1 January 2025 onwards. This includes:

- purchase orders, contracts, invoices and delivery notes;
- quality inspection reports, test data and photographs of the defective windows;
- e-mails, chat messages, meeting notes and calendar entries;
- documents on laptops, shared drives and in the product lifecycle system.

Do not delete, overwrite or change any of these documents, and do not create new
documents that comment on the dispute unless Legal asks you to. IT will suspend
automatic deletion for the mailboxes of the custodians listed below.

CUSTODIANS

Kari Leinonen (operations and purchasing), Hanna Rinne (quality), Daniel Ek (Spectra
team), Marja Toivonen (finance) and the members of the Legal team.

ACKNOWLEDGEMENT

Please reply to this message by 16 February 2026 to confirm that you have read and will
follow this notice. The hold remains in force until Legal releases it in writing, even
after the court case ends.

Questions go to me directly. Please do not discuss the dispute with Aurora staff or
with anyone outside the company.

Best regards,

Petra Salo
General Counsel
Larkspur Instruments Oy
"""


def _write_eml(path: Path, *, sender: str, to: str, cc: str | None, subject: str,
               date: dt.datetime, body: str, message_id: str) -> None:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(body, charset="utf-8", cte="7bit")
    path.write_bytes(msg.as_bytes(policy=SMTP))


def make_incident_eml(path: Path) -> None:
    _write_eml(
        path,
        sender="Tuomas Laine <tuomas.laine@larkspur.example>",
        to="Engineering <engineering@larkspur.example>",
        cc="Jonas Virtanen <jonas.virtanen@larkspur.example>",
        subject="Postmortem: telemetry ingest outage on 18 March 2026 (47 minutes)",
        date=dt.datetime(2026, 3, 27, 14, 5, tzinfo=EET),
        body=INCIDENT_BODY,
        message_id="postmortem-20260318.tuomas.laine@larkspur.example",
    )


def make_hold_eml(path: Path) -> None:
    _write_eml(
        path,
        sender="Petra Salo <petra.salo@larkspur.example>",
        to="Legal team <legal@larkspur.example>",
        cc="Kari Leinonen <kari.leinonen@larkspur.example>",
        subject="LITIGATION HOLD: Aurora supplier dispute - preserve all documents",
        date=dt.datetime(2026, 2, 9, 8, 30, tzinfo=EET),
        body=HOLD_BODY,
        message_id="hold-aurora-20260209.petra.salo@larkspur.example",
    )


# --------------------------------------------------------------------------- main


OUTPUTS = {
    "handbook/expenses-policy.pdf": make_expenses_pdf,
    "hr/salary-bands.docx": make_salary_bands,
    "finance/board/kestrel-acquisition.docx": make_board_memo,
    "legal/nda-template.docx": make_nda_template,
    "engineering/incident-2026-03.eml": make_incident_eml,
    "legal/litigation-hold.eml": make_hold_eml,
}


def check(path: Path) -> None:
    """Print the text a reader would extract from one generated file."""
    print(f"===== {path.relative_to(DOCS)}")
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        for i, page in enumerate(PdfReader(str(path)).pages, 1):
            print(f"--- page {i}\n{page.extract_text()}")
    elif path.suffix == ".docx":
        import docx

        d = docx.Document(str(path))
        for p in d.paragraphs:
            if p.text.strip():
                print(f"[{p.style.name}] {p.text}")
    elif path.suffix == ".eml":
        from email import message_from_bytes
        from email.policy import default

        m = message_from_bytes(path.read_bytes(), policy=default)
        for h in ("From", "To", "Cc", "Subject", "Date", "Message-ID"):
            print(f"{h}: {m[h]}")
        print(m.get_body(preferencelist=("plain",)).get_content()[:400], "...")


def main() -> None:
    for rel, fn in OUTPUTS.items():
        out = DOCS / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        fn(out)
        print(f"wrote {out.relative_to(DOCS.parent)} ({out.stat().st_size} bytes)")
    if "--check" in sys.argv[1:]:
        for rel in OUTPUTS:
            check(DOCS / rel)


if __name__ == "__main__":
    main()
