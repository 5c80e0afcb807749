"""PDF lines rejoined into paragraphs, across page breaks too; tables kept as rows."""

from __future__ import annotations

from ingest.chunker import chunk_document, table_pieces
from ingest.layout import RawElement, rejoin_pdf_lines, table_text
from ingest.parser import ParsedDocument, ParsedElement

HEADER = "Larkspur Instruments - Expenses policy 2026"
FULL = "Approved claims are reimbursed within 14 days of approval, to the bank account"


def line(text: str, page: int, category: str = "NarrativeText") -> RawElement:
    return RawElement(category, text, page)


def test_a_line_cut_at_the_margin_is_joined_to_the_next_even_if_classed_a_title():
    lines = [line(HEADER, 1, "Title"), line("3. Approvals", 1, "Title"),
             line(FULL + " registered in the", 1),
             line("HR system. Finance pays expense claims twice a month, so most are", 1),
             line("paid sooner.", 1, "Title"),
             line("Questions about this policy go to the finance team of the company.", 1)]
    texts = [e.text for e in rejoin_pdf_lines(lines)]
    assert texts == [HEADER, "3. Approvals",
                     f"{FULL} registered in the HR system. Finance pays expense claims twice a "
                     "month, so most are paid sooner.",
                     "Questions about this policy go to the finance team of the company."]


def test_a_sentence_continues_across_a_page_break_past_the_running_header():
    lines = [line(HEADER, 1, "Title"), line(FULL + " that is", 1),
             line(HEADER, 2, "Title"), line("registered in the HR system.", 2),
             line("Cards are issued to frequent travellers.", 2)]
    merged = rejoin_pdf_lines(lines)
    assert [(e.text, e.page) for e in merged] == [
        (HEADER, 1), (f"{FULL} that is registered in the HR system.", 1), (HEADER, 2),
        ("Cards are issued to frequent travellers.", 2)]


def test_short_lines_and_list_items_are_not_joined():
    lines = [line(FULL + " and more words here", 1), line("1. Travel", 1),
             line(FULL + " and more words here", 1), line("- a list item", 1, "ListItem")]
    assert len(rejoin_pdf_lines(lines)) == 4


def test_a_table_is_one_row_a_line_with_its_header_marked():
    html = ("<table><thead><tr><th>Department</th><th>Budget</th></tr></thead><tbody>"
            "<tr><td>R&amp;D</td><td>3,600,000</td></tr><tr><th>Total</th><th/></tr>"
            "</tbody></table>")
    assert table_text(html) == "Department | Budget\n--- | ---\nR&D | 3,600,000\nTotal |"
    assert table_text("<table><tr><td>a</td><td>b</td></tr></table>") == "a | b"
    assert table_text("<table></table>") is None


def test_a_long_table_is_split_between_rows_with_its_header_on_every_piece():
    rows = "\n".join(f"Department {i} | {i},000,000 | Owner number {i}" for i in range(60))
    text = f"Department | Budget | Owner\n--- | --- | ---\n{rows}"
    pieces = table_pieces(text, 100, str.split)
    assert len(pieces) > 3
    assert all(p.startswith("Department | Budget | Owner\n--- | --- | ---\n") for p in pieces)
    assert sum(p.count("\nDepartment ") for p in pieces) == 60
    doc = ParsedDocument("t", [ParsedElement(text, None, "Budget", table=True)])
    chunks = chunk_document(doc, chunk_size=100, chunk_overlap=10, tokenizer=str.split)
    assert all(c.text.startswith("Department | Budget | Owner") for c in chunks)
