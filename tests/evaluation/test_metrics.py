"""The ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k


def test_ndcg_counts_rank_and_grade():
    qrels = {"a": 1, "b": 1}
    assert ndcg_at_k(["a", "b", "x"], qrels, 10) == pytest.approx(1.0)
    # relevant at ranks 2 and 3: (1/log2 3 + 1/log2 4) / (1 + 1/log2 3)
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "b"], qrels, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], qrels, 10) == 0.0
    assert ndcg_at_k(["x", "a"], qrels, 1) == 0.0  # cut at k
    graded = {"a": 2, "b": 1}
    assert ndcg_at_k(["b", "a"], graded, 10) < ndcg_at_k(["a", "b"], graded, 10) == 1.0


def test_recall_and_mrr():
    qrels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "x", "c"], qrels, 100) == 0.5
    assert recall_at_k(["x", "a", "b"], qrels, 2) == 0.5
    assert mrr_at_k(["x", "y", "b"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["c", "x"], qrels, 10) == 0.0  # relevance 0 is not relevant
    assert mrr_at_k(["x", "a"], qrels, 1) == 0.0
