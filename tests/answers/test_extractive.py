"""Extractive answers read well: whole sentences and rows, most relevant first, each quoted once,
one reference per document version with its pages."""

from __future__ import annotations

from answers.answer import citation_fields
from answers.extractive import extractive_answer
from retrieval.embedder import Embedder
from retrieval.passages import split_units
from retrieval.payload import ChunkHit
from tests.payloads import chunk_payload

TABLE = ("Budget by department\n\n"
         "Department | Q3 budget (EUR) | Owner\n--- | --- | ---\n"
         "Research and development | 3,600,000 | Aino Rautio\n"
         "Total | 9,800,000 |")


def hit(n: int, text: str, *, doc: str = "handbook:policy.pdf", page: int | None = None,
        version: str = "a" * 64) -> ChunkHit:
    payload = chunk_payload(chunk_id=f"00000000-0000-0000-0000-{n:012d}", chunk_index=n,
                            doc_id=doc, page=page, text=text, doc_version=version)
    return ChunkHit(f"point-{n}", 0.9 - n / 100, payload, 0.9 - n / 100)


def answer(query: str, hits: list[ChunkHit], embedder: Embedder, sentences: int = 3):
    return extractive_answer(query, hits, embedder=embedder, min_score=0.0,
                             max_sentences=sentences)


def test_a_wrapped_line_is_rejoined_and_a_blank_line_list_item_or_heading_ends_a_unit():
    text = ("Approvals\n\nApproved claims are reimbursed within 14 days, to the bank account "
            "registered in the\nHR system. Finance pays twice a month.\n\n"
            "- Receipts are uploaded as photos\n- Paper receipts need not be kept")
    assert [u.text for u in split_units(text)] == [
        "Approved claims are reimbursed within 14 days, to the bank account registered in "
        "the HR system.",
        "Finance pays twice a month.",
        "- Receipts are uploaded as photos",
        "- Paper receipts need not be kept",
    ]


def test_a_table_row_is_one_unit_with_its_cells_named_by_the_header():
    units = split_units(TABLE)
    assert [u.text for u in units if u.row] == [
        "Department: Research and development; Q3 budget (EUR): 3,600,000; Owner: Aino Rautio.",
        "Department: Total; Q3 budget (EUR): 9,800,000.",
    ]
    assert all(u.row for u in units)  # the heading is no unit of its own


def test_two_chunks_of_one_document_are_one_reference_with_their_pages(embedder: Embedder):
    hits = [hit(0, "Hotels may cost at most 160 EUR per night in Finland.", page=3),
            hit(1, "Meals are paid up to 45 EUR per day when travelling.", page=2),
            hit(2, "The office is in Tampere, Finland.", doc="handbook:welcome.md")]
    result = answer("What may hotels and meals cost when travelling?", hits, embedder, 2)
    assert result.text.count("[1]") == 2 and "[2]" not in result.text
    [citation] = result.citations
    assert citation.pages == [2, 3]
    fields = citation_fields(citation)
    assert (fields["page"], fields["pages"]) == (2, [2, 3])
    assert {h.point_id for h in citation.hits} == {"point-0", "point-1"}
    assert fields["chunk_ids"] == [h.point_id for h in citation.hits]


def test_versions_of_a_document_are_separate_references(embedder: Embedder):
    hits = [hit(0, "Hotels may cost at most 160 EUR per night in Finland."),
            hit(1, "Hotels may cost at most 150 EUR per night in Finland.", version="b" * 64)]
    result = answer("How much may hotels cost?", hits, embedder, 2)
    assert [c.n for c in result.citations] == [1, 2]


def test_a_sentence_in_overlapping_chunks_is_quoted_once(embedder: Embedder):
    shared = "Approved claims are reimbursed within 14 days of approval."
    hits = [hit(0, f"Submit claims within 30 days of the expense. {shared}"),
            hit(1, f"{shared.upper()}  Finance pays claims twice a month."),
            hit(2, "claims are reimbursed within 14 days of approval. Paper receipts are "
                   "not kept after upload.")]
    result = answer("When are approved claims reimbursed?", hits, embedder, 4)
    assert result.text.lower().count("reimbursed within 14 days") == 1
    assert len(result.citations) == 1


def test_the_most_relevant_sentence_comes_first(embedder: Embedder):
    hits = [hit(0, "The office is in Tampere. Parking permits are issued by the facilities desk."),
            hit(1, "The annual leave is 25 working days per year.", doc="handbook:leave.md")]
    result = answer("How many days of annual leave do we get?", hits, embedder, 2)
    assert result.text.startswith("The annual leave is 25 working days per year. [1]")
    assert result.citations[0].hit.payload.doc_id == "handbook:leave.md"


def test_a_neighbour_from_the_same_chunk_follows_in_reading_order(embedder: Embedder):
    text = ("Claims above 2,000 EUR need a director's approval. The meal limit is 45 EUR per "
            "day. Snacks count against the meal limit.")
    result = answer("What is the meal limit and do snacks count?", [hit(0, text)], embedder, 2)
    assert result.text == ("The meal limit is 45 EUR per day. [1] Snacks count against the meal "
                           "limit. [1]")


def test_a_table_row_is_quoted_as_a_unit(embedder: Embedder):
    result = answer("What is the total budget?", [hit(0, TABLE)], embedder, 1)
    assert result.text == "Department: Total; Q3 budget (EUR): 9,800,000. [1]"
