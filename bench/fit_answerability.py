"""Fit the answerability decision (answers/answerability.py) and write its model file.

    .venv/bin/python bench/fit_answerability.py [--workdir DIR] [--max-queries N]

Two kinds of calibration data, both asked through the product's own path (the real parser,
embedder, embedded Qdrant, Casbin scopes, Retriever at the chat's default top_k, and the
judge's own features), and never the test sets the decision is judged on:

- SciFact's *training* queries (../shared/data/scifact, qrels/train.tsv), each asked by the
  three users of `clearance eval beir --permissions` (evaluation/run.py), who may read all,
  half and a quarter of the corpus: a query is answerable for a user who may read one of its
  relevant documents. The test queries are left for `clearance eval`.
- the example corpus's calibration questions (bench/answerability_calibration.py) asked by
  every example user; the test questions (tests/answers/answerable_questions.py) are left for
  tests/answers/test_answerability_e2e.py.

A logistic regression over the standardised features, with the two kinds weighing the same
and answerable and unanswerable weighing the same within each, gives the probability; the
threshold is the one that makes the worse of "answered when answerable" and "abstained when not"
as high as possible over both. Writes answers/answerability_model.json and prints, and writes to
bench/results/answerability_fit.json, the coefficients and the rates on the calibration data.

--workdir keeps the ingested SciFact deployment there and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from answers.answerability import (  # noqa: E402
    FEATURES,
    MODEL_FILE,
    AnswerabilityJudge,
    AnswerabilityModel,
)
from bench.answerability_calibration import CALIBRATION  # noqa: E402
from evaluation.answerability import CHAT_TOP_K, ask_scifact, open_scifact  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402

RESULTS = REPO / "bench" / "results" / "answerability_fit.json"


def example_rows(judge: AnswerabilityJudge, embedder: Embedder, root: Path
                 ) -> tuple[list[list[float]], list[int]]:
    from application.services import open_catalog, open_document_access, open_policy
    from application.settings import load_settings
    from ingest.pipeline import build_index_version
    from retrieval.bm25 import Bm25Encoder
    from retrieval.retriever import Retriever
    from retrieval.scope import scope_for
    from tests.conftest import EXAMPLE_USERS, write_example_config
    from tests.test_end_to_end import may_read

    settings = load_settings(write_example_config(root))
    catalog = open_catalog(settings)
    build_index_version(settings.sources, settings.ingest, catalog=catalog, embedder=embedder)
    retriever = Retriever(catalog, embedder, open_document_access(settings, catalog),
                          bm25=Bm25Encoder(settings.retrieval.bm25),
                          ranking=settings.retrieval.ranking())
    policy = open_policy(settings)
    X: list[list[float]] = []
    y: list[int] = []
    try:
        for user in EXAMPLE_USERS:
            scope = scope_for(policy, user)
            for question, documents in CALIBRATION.items():
                hits = retriever.search(question, scope=scope, top_k=CHAT_TOP_K).hits
                judgement = judge.decide(question, hits,
                                         min_score=settings.retrieval.min_score)
                if not judgement.evidence:
                    continue  # abstains before any decision: nothing to fit
                X.append([judgement.features[f] for f in FEATURES])
                y.append(int(any(may_read(user, d) for d in documents)))
    finally:
        retriever.close()
        catalog.backend.close()
    return X, y


def fit(X: np.ndarray, y: np.ndarray, source: np.ndarray) -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression

    means = X.mean(axis=0)
    scales = X.std(axis=0)
    scales[scales == 0] = 1.0
    weights = np.zeros(len(y))
    for s in np.unique(source):  # each source and each class within it weighs the same
        for label in (0, 1):
            mask = (source == s) & (y == label)
            if mask.any():
                weights[mask] = 1.0 / mask.sum()
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit((X - means) / scales, y, sample_weight=weights)
    p = model.predict_proba((X - means) / scales)[:, 1]
    best = (-1.0, 0.5)
    for t in np.arange(0.05, 0.951, 0.005):
        worst = min(rate for s in np.unique(source) for rate in (
            float((p[(source == s) & (y == 1)] >= t).mean()),
            float((p[(source == s) & (y == 0)] < t).mean())))
        best = max(best, (worst, float(t)))
    threshold = round(best[1], 3)
    rates = {str(s): {"answered_when_answerable": float((p[(source == s) & (y == 1)]
                                                        >= threshold).mean()),
                      "abstained_when_not": float((p[(source == s) & (y == 0)]
                                                   < threshold).mean()),
                      "answerable": int(((source == s) & (y == 1)).sum()),
                      "unanswerable": int(((source == s) & (y == 0)).sum())}
             for s in np.unique(source)}
    return {"features": list(FEATURES), "weights": [round(float(w), 6) for w in model.coef_[0]],
            "intercept": round(float(model.intercept_[0]), 6), "threshold": threshold,
            "means": [round(float(m), 6) for m in means],
            "scales": [round(float(s), 6) for s in scales], "calibration": rates}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the SciFact deployment")
    parser.add_argument("--max-queries", type=int, help="SciFact training queries to ask")
    parser.add_argument("--output", type=Path, default=MODEL_FILE, help="the model file")
    args = parser.parse_args()
    started = time.monotonic()
    embedder = Embedder()
    # The features do not depend on the model: any coefficients will do while collecting.
    judge = AnswerabilityJudge(embedder, model=None if MODEL_FILE.exists() else _placeholder())
    with tempfile.TemporaryDirectory(prefix="clearance-fit-") as tmp:
        root = args.workdir or Path(tmp) / "scifact"
        deployment = open_scifact(REPO.parent / "shared" / "data" / "scifact", root, embedder,
                                  split="train")
        try:
            sf = ask_scifact(deployment, judge, max_queries=args.max_queries)
        finally:
            deployment.close()
        ex_X, ex_y = example_rows(judge, embedder, Path(tmp) / "example")
    X = np.array([r.features for r in sf if r.features is not None] + ex_X)
    y = np.array([int(r.answerable) for r in sf if r.features is not None] + ex_y)
    source = np.array(["scifact-train"] * (len(X) - len(ex_X)) + ["example-calibration"]
                      * len(ex_X))
    model = fit(X, y, source)
    args.output.write_text(json.dumps({k: v for k, v in model.items() if k != "calibration"},
                                     indent=1) + "\n", encoding="utf-8")
    report = {"benchmark": "bench/fit_answerability.py", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                time.gmtime()),
              "seconds": round(time.monotonic() - started, 1), **model}
    RESULTS.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


def _placeholder() -> AnswerabilityModel:
    n = len(FEATURES)
    return AnswerabilityModel((0.0,) * n, 0.0, 0.5, (0.0,) * n, (1.0,) * n)


if __name__ == "__main__":
    raise SystemExit(main())
