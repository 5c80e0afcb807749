"""BEIR-format datasets: corpus.jsonl, queries.jsonl and qrels/<split>.tsv in one folder."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path


class DatasetError(ValueError):
    """The folder is not a readable BEIR dataset; the message says what is missing or wrong."""


@dataclass(frozen=True)
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # doc id → (title, text)
    queries: dict[str, str]  # query id → text, only those with judgements in the split
    qrels: dict[str, dict[str, int]]  # query id → doc id → relevance (> 0 is relevant)


def _jsonl(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: a BEIR dataset has corpus.jsonl, queries.jsonl "
                           "and qrels/<split>.tsv")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise DatasetError(f"{path}:{number}: a JSON object with an _id is expected")
            rows.append(row)
    return rows


def load_beir(path: Path, split: str = "test") -> BeirDataset:
    qrels_path = path / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise DatasetError(f"{qrels_path} is missing: no judgements for split {split!r}")
    corpus = {str(r["_id"]): (str(r.get("title") or ""), str(r.get("text") or ""))
              for r in _jsonl(path / "corpus.jsonl")}
    all_queries = {str(r["_id"]): str(r.get("text") or "") for r in _jsonl(path / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if number == 1 and row and row[0] == "query-id":
                continue
            if len(row) != 3:
                raise DatasetError(f"{qrels_path}:{number}: expected query-id, corpus-id, score")
            try:
                score = int(row[2])
            except ValueError:
                raise DatasetError(f"{qrels_path}:{number}: score {row[2]!r} is not an integer"
                                   ) from None
            qrels.setdefault(row[0], {})[row[1]] = score
    missing = sorted(q for q in qrels if q not in all_queries)
    if missing:
        raise DatasetError(f"qrels name queries not in queries.jsonl: {missing[:5]}")
    queries = {q: all_queries[q] for q in qrels}
    return BeirDataset(path.resolve().name, corpus, queries, qrels)
