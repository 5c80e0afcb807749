"""`clearance eval beir` on a small BEIR-format dataset written here: figures printed as
`name: value` lines, permission-aware mode scored per user with no leaks, bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main
from evaluation.beir import DatasetError, load_beir
from evaluation.run import GROUPS, PERMISSION_USERS, RANKINGS, evaluate, group_of
from retrieval.embedder import Embedder

pytestmark = pytest.mark.e2e

TOPICS = {
    "volcano": "Volcanic eruptions eject ash and lava; magma chambers feed the eruption.",
    "insulin": "Insulin regulates blood glucose by promoting uptake into muscle and fat cells.",
    "telescope": "Radio telescopes detect faint signals from distant galaxies and pulsars.",
    "wheat": "Wheat yields depend on nitrogen fertiliser, rainfall and the cultivar grown.",
    "bridge": "Suspension bridges carry the deck on cables hung from tall towers.",
    "vaccine": "Vaccines train the immune system with antigens so antibodies form quickly.",
}


def write_dataset(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i, (topic, text) in enumerate(TOPICS.items()):
        for j in range(3):  # three documents per topic, the first one judged relevant
            doc_id = f"{topic}-{j}"
            corpus.append({"_id": doc_id, "title": f"{topic.title()} study {j}",
                           "text": text if j == 0 else f"Unrelated note {j} on {topic} logistics."})
        queries.append({"_id": str(i), "text": text.split(";")[0].split(" by ")[0]})
        qrels.append(f"{i}\t{topic}-0\t1")
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return root


def test_plain_evaluation_prints_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = write_dataset(tmp_path / "tiny")
    assert main(["eval", "beir", str(data), "--workdir", str(tmp_path)]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["documents"] == "18"
    assert lines["default ranking"] == "hybrid-dbsf"
    for name in RANKINGS:  # every ranking scored, side by side, on the one ingested version
        assert lines[f"queries [{name}]"] == "6"
        # Each query is the relevant document's own sentence: every ranking finds it.
        assert float(lines[f"ndcg@10 [{name}]"]) > 0.8
        assert float(lines[f"recall@100 [{name}]"]) == 1.0
    assert lines["leaks"].startswith("0 in ")
    assert not list(tmp_path.glob("clearance-eval-*"))  # the throw-away data dir is gone


def test_permission_aware_evaluation_scores_each_user_on_what_they_may_read(
        tmp_path: Path, embedder: Embedder):
    dataset = load_beir(write_dataset(tmp_path / "tiny"))
    report = evaluate(dataset, tmp_path / "work", embedder=embedder, permissions=True)
    assert report.leaks == 0
    assert set(report.users) == set(PERMISSION_USERS)
    for user, held in PERMISSION_USERS.items():
        scores = report.users[user]
        readable_relevant = [q for q, judged in dataset.qrels.items()
                             if any(group_of(d) % GROUPS in held for d in judged)]
        assert scores.queries == len(readable_relevant)
        assert scores.returned > 0
    # reader-all sees everything: every judged document is found.
    assert min(report.users["reader-all"].recall100) == 1.0
    assert any(line.startswith("ndcg@10 [hybrid-dbsf, reader-one]: ") for line in report.lines())


def test_chosen_rankings_and_the_default_are_scored(tmp_path: Path, embedder: Embedder):
    dataset = load_beir(write_dataset(tmp_path / "tiny"))
    report = evaluate(dataset, tmp_path / "work", embedder=embedder, permissions=True,
                      rankings=["dense", "sparse"])
    assert list(report.scores) == ["dense", "sparse", "hybrid-dbsf"]
    assert report.leaks == 0
    for users in report.scores.values():
        assert min(users["reader-all"].recall100) == 1.0


def test_an_unknown_ranking_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = write_dataset(tmp_path / "tiny")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "beir", str(data), "--rankings", "dense,bogus"])
    assert exit_info.value.code == 2
    assert "unknown ranking(s) bogus: choose from dense, sparse" in capsys.readouterr().err


def test_a_folder_that_is_not_a_beir_dataset_is_refused(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]):
    with pytest.raises(DatasetError, match=r"qrels/test\.tsv is missing"):
        load_beir(tmp_path)
    data = write_dataset(tmp_path / "bad")
    (data / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\nnot json\n')
    assert main(["eval", "beir", str(data)]) == 1
    assert "corpus.jsonl:2: not JSON" in capsys.readouterr().err
