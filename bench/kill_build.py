"""Kill `clearance ingest` with SIGKILL at random points and check that the index recovers.

    .venv/bin/python -m bench.kill_build [--kills 20] [--seed 3] [--targeted 0] [--keep DIR]

Sets up a throw-away deployment (a copy of examples/docs and examples/policy.csv), ingests it
once, then runs a second full build while watching the disk to measure how long a build takes
and when each phase starts. Then, `--kills` times: starts `clearance ingest` in a process of its
own, sleeps a seeded random delay (one per equal slice of the build's duration, so from the
interpreter's start-up to the switch and exit), kills it with SIGKILL and checks that

- CURRENT names the previous version, which still has every chunk and answers the fixed
  searches exactly as before; or a new sealed version with a manifest, every chunk and the
  same answers (if the kill came after the switch), never anything else;
- every version the store lists opens and holds every chunk (no half-built or half-deleted one);
- what the previous kill left behind (a .building- directory, a lock file) is gone once the
  next build has started its version (create() cleans up after a dead build).

`--targeted N` adds N kills triggered by a phase (see PHASES) instead of a delay: as soon as the
build shows it has reached parsing, embedding, writing, sealed, recorded, switched (the last
three are windows of milliseconds that random delays rarely hit). After the kills, one more
full `clearance ingest` must leave no .building- directory, lock file or temp file behind.

Every build re-embeds the text documents: before each one, a trailing newline is added to or
removed from every .md and .txt file, so their content hash differs from the current version's
and the incremental build (ingest/pipeline.py) cannot reuse their chunks; the parsed text, and
so the chunks and the answers, stay the same (checked on the two set-up builds).

The fixed searches use stored chunk vectors as queries (no embedder in this process), each
filtered by a set of the example principals, through EdgeBackend directly.

Prints one row per kill and `kills: N, ok: N, leftovers after next build: 0`; exit status 1
on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

from retrieval.edge_store import EdgeBackend  # noqa: E402
from retrieval.store import ReadFilter  # noqa: E402
from retrieval.versions import VersionCatalog  # noqa: E402
from tests.conftest import write_example_config  # noqa: E402

# Phases a build goes through, in order, as told from the disk and the process's memory map:
# start     no .building- directory yet (interpreter start-up, reading the current version)
# parsing   .building- directory created, embedding model not loaded yet (imports, parsing: the
#           first embedding batch loads the model)
# embedding model loaded (model.safetensors mapped), no point written yet
# writing   points written to the .building- directory (more embedding and writing, optimize,
#           flush: seal() shows nothing on disk before its rename)
# sealed    renamed into place, no manifest yet
# recorded  manifest written, CURRENT not switched yet
# switched  CURRENT names the new version (then: pruning old versions, interpreter teardown)
# exited    the build finished before the kill
PHASES = ("start", "parsing", "embedding", "writing", "sealed", "recorded", "switched", "exited")
MODEL_FILE = "model.safetensors"
TARGETS = ("parsing", "embedding", "writing", "sealed", "recorded", "switched")
# Each fixed search: a query vector (a stored chunk's) searched with these principals.
PRINCIPALS: tuple[frozenset[str], ...] = (
    frozenset({"group:staff"}),
    frozenset({"group:hr", "group:staff", "user:alice"}),
    frozenset({"group:engineering", "group:platform", "group:staff"}),
    frozenset({"user:carol", "group:finance", "group:staff"}),
    frozenset({"group:legal"}),
    frozenset({"role:admin", "group:hr", "group:engineering", "group:platform", "group:legal",
               "group:finance", "group:staff", "user:carol"}),
)
TOP_K = 5
SCORE_TOLERANCE = 1e-4  # between two builds of the same text; the same version must match exactly
TOGGLED = (".md", ".txt")
INGEST_TIMEOUT_S = 600


@dataclass
class Deployment:
    """A copy of the example corpus with a config whose data_dir lies beside it."""

    root: Path
    config: Path
    originals: dict[Path, bytes] = field(default_factory=dict)
    state: int = 0  # 0: the files as shipped; 1: each toggled file with a trailing newline

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def manifest_dir(self) -> Path:
        return self.data_dir / "versions"

    def backend(self) -> EdgeBackend:
        return EdgeBackend(self.index_dir)

    def catalog(self) -> VersionCatalog:
        return VersionCatalog(self.manifest_dir, self.backend())

    def set_corpus_state(self, state: int) -> None:
        """Give every .md and .txt file a trailing newline (1) or not (0)."""
        for path, content in self.originals.items():
            path.write_bytes(content + (b"\n" if state else b""))
        self.state = state


def make_deployment(root: Path, toggle: Sequence[str] | None = None) -> Deployment:
    """Deploy under `root`; `toggle`: the files (relative to docs/) to re-embed in every build,
    by default every .md and .txt file."""
    root.mkdir(parents=True, exist_ok=True)
    config = write_example_config(root)
    docs = root / "docs"
    if toggle is None:
        paths = [p for p in sorted(docs.rglob("*")) if p.suffix in TOGGLED]
    else:
        paths = [docs / name for name in toggle]
    return Deployment(root, config, {p: p.read_bytes() for p in paths})


def ingest_command(deployment: Deployment) -> list[str]:
    return [sys.executable, "-m", "api.cli", "--config", str(deployment.config), "ingest"]


def start_ingest(deployment: Deployment, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(ingest_command(deployment), cwd=REPO, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)


def run_ingest(deployment: Deployment) -> float:
    """One full `clearance ingest`; its wall time. RuntimeError if it fails."""
    started = time.perf_counter()
    result = subprocess.run(ingest_command(deployment), cwd=REPO, capture_output=True,
                            text=True, timeout=INGEST_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"clearance ingest failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


# What a version answers.

Result = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Snapshot:
    """A version's chunk count and its answers to the fixed searches."""

    version: str
    chunks: int
    results: tuple[Result, ...]


def query_vectors(deployment: Deployment, version: str, n: int = 4) -> list[list[float]]:
    """The vectors of n chunks spread over the version's point ids (sorted): fixed queries."""
    reader = deployment.backend().open(version)
    try:
        chunks = sorted(reader.iter_chunks(), key=lambda c: c.point_id)
    finally:
        reader.close()
    step = max(len(chunks) // n, 1)
    return [list(chunks[i * step].vector) for i in range(n)]


def snapshot(deployment: Deployment, version: str, queries: Sequence[list[float]]) -> Snapshot:
    reader = deployment.backend().open(version)
    try:
        results = tuple(
            tuple((h.point_id, h.score)
                  for h in reader.search(q, access=ReadFilter(frozenset(principals)), limit=TOP_K))
            for q in queries
            for principals in PRINCIPALS
        )
        return Snapshot(version, reader.count(), results)
    finally:
        reader.close()


def same_answers(a: Snapshot, b: Snapshot, tolerance: float) -> bool:
    if a.chunks != b.chunks or len(a.results) != len(b.results):
        return False
    for ra, rb in zip(a.results, b.results, strict=True):
        if [i for i, _ in ra] != [i for i, _ in rb]:
            return False
        if any(abs(sa - sb) > tolerance for (_, sa), (_, sb) in zip(ra, rb, strict=True)):
            return False
    return True


# What is on disk.


def leftovers(deployment: Deployment) -> list[str]:
    """Files a build or switch leaves only when it dies: hidden entries and temp files."""
    found = []
    for directory in (deployment.index_dir, deployment.manifest_dir, deployment.data_dir):
        if directory.is_dir():
            for entry in directory.iterdir():
                if entry.name.startswith(".") or entry.name.endswith(".tmp"):
                    found.append(str(entry.relative_to(deployment.data_dir)))
    return sorted(found)


def orphans(deployment: Deployment) -> list[str]:
    """Sealed versions without a manifest: a build killed between its rename and its record."""
    catalog = deployment.catalog()
    return [v for v in catalog.backend.versions() if catalog.get(v) is None]


def model_loaded(pid: int) -> bool:
    """Whether the process has the embedding model's weights mapped (Linux /proc)."""
    try:
        return MODEL_FILE in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@dataclass(frozen=True)
class Before:
    """What was on disk before a build started, to tell what the build itself made."""

    versions: frozenset[str]
    current: str | None
    building: frozenset[str]  # .building- directories of earlier, dead builds

    @classmethod
    def take(cls, deployment: Deployment) -> Before:
        backend = deployment.backend()
        return cls(frozenset(backend.versions()), backend.current(),
                   frozenset(building_dirs(deployment)))


def building_dirs(deployment: Deployment) -> list[str]:
    index = deployment.index_dir
    if not index.is_dir():
        return []
    return [p.name for p in index.iterdir() if p.name.startswith(".building-")]


def phase(deployment: Deployment, before: Before, model: bool) -> str:
    """How far the build got, from the disk, and `model`: whether it had loaded the model."""
    backend = deployment.backend()
    if backend.current() != before.current:
        return "switched"
    new = set(backend.versions()) - before.versions
    if new:
        catalog = deployment.catalog()
        return "recorded" if any(catalog.get(v) is not None for v in new) else "sealed"
    building = [deployment.index_dir / n for n in building_dirs(deployment)
                if n not in before.building]
    if not building:
        return "start"
    if any(building[0].glob("segments/*/vector_storage/vectors/chunk_*")):
        return "writing"
    return "embedding" if model else "parsing"


def children(pid: int) -> list[int]:
    """Child processes of pid (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


# One build: its timeline, and one kill.


@dataclass
class Timeline:
    """Seconds from the start of `clearance ingest` at which each phase was first seen."""

    seen: dict[str, float]

    def at(self, seconds: float) -> str:
        """The phase a build was in `seconds` after its start, by this timeline."""
        current = "start"
        for name in PHASES:
            if name in self.seen and self.seen[name] <= seconds:
                current = name
        return current


def watch_build(deployment: Deployment, log: Path, poll_s: float = 0.02) -> Timeline:
    """A full build, watched: when each phase first shows on disk, and when it exits."""
    before = Before.take(deployment)
    started = time.perf_counter()
    process = start_ingest(deployment, log)
    seen: dict[str, float] = {"start": 0.0}
    while process.poll() is None:
        now = phase(deployment, before, model_loaded(process.pid))
        seen.setdefault(now, time.perf_counter() - started)
        time.sleep(poll_s)
    seen["exited"] = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"the watched build failed ({process.returncode}); see {log}")
    return Timeline(seen)


@dataclass
class Kill:
    trial: int
    mode: str  # "random" or "on <phase>"
    delay_ms: float  # from the start of the process to the kill
    phase: str  # how far it got, from the disk after its death
    outcome: str
    ok: bool
    leftovers: list[str]
    cleaned: str  # whether the previous kill's leftovers were gone: yes, NO, - (not expected)
    notes: list[str] = field(default_factory=list)


def kill_build(
    deployment: Deployment, log: Path, *, delay_s: float | None = None,
    on_phase: str | None = None, poll_s: float = 0.001, give_up_s: float = 300.0,
) -> tuple[float, str, list[str]]:
    """Start a build and SIGKILL it after `delay_s`, or as soon as `on_phase` shows on disk.

    Returns (seconds from start to kill, phase reached, notes).
    """
    before = Before.take(deployment)
    notes: list[str] = []
    started = time.perf_counter()
    process = start_ingest(deployment, log)
    if delay_s is not None:
        # Sleep in one go: polling the disk would slow the build down.
        time.sleep(max(delay_s - (time.perf_counter() - started), 0.0))
    else:
        assert on_phase is not None
        target = PHASES.index(on_phase)
        while process.poll() is None and time.perf_counter() - started < give_up_s:
            now = phase(deployment, before, model_loaded(process.pid))
            if PHASES.index(now) >= target:
                break
            time.sleep(poll_s)
    kids = children(process.pid)
    model = model_loaded(process.pid)  # read just before the kill: memory maps die with it
    finished = process.poll() is not None
    with_kill = time.perf_counter() - started
    if not finished:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    for kid in kids:  # none expected; a survivor could hold the build's lock
        try:
            os.kill(kid, signal.SIGKILL)
            notes.append(f"child {kid} outlived the build and was killed")
        except ProcessLookupError:
            pass
    if finished:
        notes.append(f"the build had exited ({process.returncode}) before the kill")
        reached = "exited"
    else:
        reached = phase(deployment, before, model)
    return with_kill, reached, notes


def check_recovery(
    deployment: Deployment, before: Snapshot, expected_new: Snapshot,
    queries: Sequence[list[float]],
) -> tuple[str, bool, list[str], Snapshot]:
    """After a kill: (outcome, ok, problems, snapshot of what is current now)."""
    problems: list[str] = []
    catalog = deployment.catalog()
    backend = catalog.backend
    for version in backend.versions():
        reader = backend.open(version)
        try:
            count = reader.count()
        finally:
            reader.close()
        if count != before.chunks:
            problems.append(f"listed version {version} has {count} chunks, not {before.chunks}")
    current = backend.current()
    if current is None or current not in backend.versions():
        problems.append(f"CURRENT names {current!r}, which is not a sealed version")
        return "CURRENT broken", False, problems, before
    now = snapshot(deployment, current, queries)
    if current == before.version:
        outcome = "previous kept"
        if now != before:  # the very same files: identical, scores included
            problems.append("the previous version's answers changed")
    else:
        outcome = "new version"
        info = catalog.get(current)
        if info is None:
            problems.append(f"new current version {current} has no manifest")
        elif info.chunks != before.chunks:
            problems.append(f"manifest of {current} says {info.chunks} chunks")
        if not same_answers(now, expected_new, SCORE_TOLERANCE):
            problems.append(f"new version {current} answers differently from a full build")
    return outcome, not problems, problems, now


def delays(duration_s: float, kills: int, seed: int) -> list[float]:
    """One seeded random delay in each of `kills` equal slices of [0, duration]."""
    rng = random.Random(seed)
    return [duration_s * (i + rng.random()) / kills for i in range(kills)]


@dataclass
class Campaign:
    """A deployment with one complete version, and what every later build must answer."""

    deployment: Deployment
    queries: list[list[float]]
    expected: dict[int, Snapshot]  # per corpus state: the answers of a full build
    current: Snapshot
    log: Path


def prepare(root: Path, toggle: Sequence[str] | None = None
            ) -> tuple[Campaign, Timeline, float]:
    """Deploy, ingest (corpus state 0), then a watched build (state 1) to time the builds to kill.

    Returns the campaign, the timeline of the watched build and the first ingest's seconds.
    """
    deployment = make_deployment(root, toggle)
    log = root / "ingest.log"
    first_s = run_ingest(deployment)
    backend = deployment.backend()
    version = backend.current()
    assert version is not None
    queries = query_vectors(deployment, version)
    expected = {0: snapshot(deployment, version, queries)}
    deployment.set_corpus_state(1)
    timeline = watch_build(deployment, log)
    second = backend.current()
    assert second is not None and second != version
    expected[1] = snapshot(deployment, second, queries)
    return Campaign(deployment, queries, expected, expected[1], log), timeline, first_s


def one_kill(
    campaign: Campaign, trial: int, *, delay_s: float | None = None,
    on_phase: str | None = None, previous_leftovers: Sequence[str] = (),
) -> Kill:
    """Flip the corpus, start a build, kill it, check; the campaign follows what is current."""
    deployment = campaign.deployment
    before = campaign.current
    state = 1 - deployment.state
    deployment.set_corpus_state(state)
    killed_after, reached, notes = kill_build(
        deployment, campaign.log, delay_s=delay_s, on_phase=on_phase
    )
    outcome, ok, problems, now = check_recovery(
        deployment, before, campaign.expected[state], campaign.queries
    )
    left = leftovers(deployment)
    # Once a build has created its version, what dead builds, drops and switches left in the
    # index directory must be gone: create() cleans up first.
    stale = [n for n in previous_leftovers if n.startswith("index/.")]
    if not stale or PHASES.index(reached) < PHASES.index("parsing"):
        cleaned = "-"
    else:
        still = [n for n in stale if n in left]
        cleaned = "NO" if still else "yes"
        if still:
            ok = False
            problems.append(f"not cleaned up by the next build: {', '.join(still)}")
    if outcome == "new version":
        campaign.current = now
    else:
        deployment.state = 1 - state  # the corpus the current version was built from, again
        deployment.set_corpus_state(deployment.state)
    mode = "random" if on_phase is None else f"on {on_phase}"
    return Kill(trial, mode, killed_after * 1000, reached, outcome, ok, left, cleaned,
                notes + problems)


def final_build(campaign: Campaign) -> tuple[list[str], list[str]]:
    """One more complete build; (leftovers after it, problems)."""
    deployment = campaign.deployment
    deployment.set_corpus_state(1 - deployment.state)
    run_ingest(deployment)
    problems = []
    current = deployment.backend().current()
    assert current is not None
    now = snapshot(deployment, current, campaign.queries)
    if not same_answers(now, campaign.expected[deployment.state], SCORE_TOLERANCE):
        problems.append(f"the final build {current} answers differently")
    campaign.current = now
    return leftovers(deployment), problems


def print_table(kills: Sequence[Kill], out: Callable[[str], None] = print) -> None:
    out(f"{'trial':>5}  {'mode':<12} {'delay ms':>9}  {'phase reached':<13} {'outcome':<14} "
        f"{'prev cleaned':<12} leftovers / notes")
    for k in kills:
        extra = ", ".join([*k.leftovers, *k.notes]) or "-"
        out(f"{k.trial:>5}  {k.mode:<12} {k.delay_ms:>9.0f}  {k.phase:<13} "
            f"{k.outcome + ('' if k.ok else ' FAIL'):<14} {k.cleaned:<12} {extra}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills at random delays")
    parser.add_argument("--targeted", type=int, default=0, choices=range(0, len(TARGETS) + 1),
                        help=f"extra kills, as soon as the disk shows: {', '.join(TARGETS)}")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None,
                        help="deploy under this (new) directory and keep it")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="clearance-kill-"))
    try:
        campaign, timeline, first_s = prepare(root)
        duration = timeline.seen["exited"]
        print(f"deployment: {root}")
        print(f"first ingest: {first_s:.1f} s; watched full build: {duration:.1f} s; phases first "
              "seen at (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timeline.seen.items()))
        same = same_answers(campaign.expected[0], campaign.expected[1], SCORE_TOLERANCE)
        print(f"chunks: {campaign.current.chunks}; corpus states 0 and 1 answer the same: {same}")
        kills: list[Kill] = []
        previous: list[str] = []
        plan: list[tuple[float | None, str | None]] = [
            (d, None) for d in delays(duration, args.kills, args.seed)]
        plan += [(None, p) for p in TARGETS[: args.targeted]]
        for trial, (delay_s, on_phase) in enumerate(plan, start=1):
            kill = one_kill(campaign, trial, delay_s=delay_s, on_phase=on_phase,
                            previous_leftovers=previous)
            if delay_s is not None:
                kill.notes.insert(0, f"timeline: {timeline.at(delay_s)}")
            kills.append(kill)
            previous = kill.leftovers
            print(f"  trial {trial}: {kill.outcome}, {kill.phase}, {kill.delay_ms:.0f} ms",
                  file=sys.stderr, flush=True)
        left, problems = final_build(campaign)
        stray = orphans(campaign.deployment)
        print()
        print_table(kills)
        ok = sum(k.ok for k in kills)
        print()
        if stray:
            print(f"sealed versions without a manifest (killed between seal and record): "
                  f"{', '.join(stray)}")
        for problem in problems:
            print(f"final build: {problem}")
        if left:
            print(f"left over after the next build: {', '.join(left)}")
        print(f"kills: {len(kills)}, ok: {ok}, leftovers after next build: {len(left)}")
        return 0 if ok == len(kills) and not left and not problems else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
