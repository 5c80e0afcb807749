"""The one wrapper around prometheus_client: the service's metrics, recorded and exposed.

Off until `start(directory)`: every `record_*` below is then a no-op costing one comparison.
Started, the process records in prometheus_client's multiprocess mode into `directory` (one
per deployment, `data_dir/metrics` by default), so that every process of a deployment (several
`clearance serve` over one data_dir) writes its own files there and a scrape of any of them
reads the sum (`exposition`). Prometheus's client keeps its metrics per process, like logging
does its loggers; this module is therefore process-wide state, set once at start-up.

Labels hold route templates, outcomes, modes, status codes, tenant and source names; never a
user, a key id or a query (tests/ops/test_metrics_labels.py checks a real scrape).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

_lock = threading.Lock()
_started: Path | None = None
_m: _Instruments | None = None

# Latency buckets (seconds) from a cached search (a few ms) to an LLM at its timeout.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class MetricsError(Exception):
    """The metrics directory cannot be used, or a second one was asked for in one process."""


class _Instruments:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.request = Histogram("clearance_http_request_duration_seconds",
                                 "HTTP requests by route template, method, status and outcome",
                                 ["route", "method", "status", "outcome"], buckets=_BUCKETS)
        self.refused = Counter("clearance_http_refusals",
                               "Requests refused (401, 403, 429, 503) by route and reason",
                               ["route", "reason"])
        self.answers = Counter("clearance_answers", "Chat answers by mode and the caller's tenant",
                               ["mode", "tenant"])
        self.dropped = Counter("clearance_permission_dropped_hits",
                               "Hits the store returned that failed the second permission "
                               "check (must stay 0)", ["action"])
        self.llm = Histogram("clearance_llm_request_duration_seconds",
                             "Calls to the LLM by outcome (ok, timeout, error)", ["outcome"],
                             buckets=_BUCKETS)
        self.llm_errors = Counter("clearance_llm_errors", "LLM calls that failed, by reason",
                                  ["reason"])
        self.llm_tokens = Counter("clearance_llm_tokens", "Tokens of LLM calls (prompt, "
                                  "completion)", ["kind"])
        self.embedding = Histogram("clearance_embedding_duration_seconds",
                                   "Embedding one query", buckets=_BUCKETS)
        self.search = Histogram("clearance_search_duration_seconds",
                                "One permission-filtered search in the store, embedding "
                                "included, by ranking", ["ranking"], buckets=_BUCKETS)
        self.audit = Histogram("clearance_audit_append_duration_seconds",
                               "Appending one audit record, by store (file, postgres)",
                               ["store"], buckets=_BUCKETS)
        self.audit_failures = Counter("clearance_audit_append_failures",
                                      "Audit records that could not be written, by store",
                                      ["store"])
        self.jobs = Counter("clearance_build_jobs", "Re-index jobs started, by source",
                            ["source"])
        self.job_duration = Histogram("clearance_build_job_duration_seconds",
                                      "Re-index jobs that ended, by outcome",
                                      ["outcome"], buckets=(1, 5, 15, 60, 300, 900, 3600))


def start(directory: Path) -> None:
    """Record this process's metrics into `directory` from now on (made if missing). Files of
    processes no longer running are removed first: a deployment starts from zero, and a
    process that started before this one keeps its counts. MetricsError for a directory that
    cannot be used, or when this process already records into another one."""
    global _started, _m
    directory = Path(directory).resolve()
    with _lock:
        if _started is not None:
            if _started != directory:
                raise MetricsError(f"this process already records metrics into {_started}")
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _clear_dead(directory)
        except OSError as exc:
            raise MetricsError(f"cannot use the metrics directory {directory}: {exc}") from exc
        # prometheus_client picks its value class when its `values` module is first imported,
        # and the directory whenever a labelled child is made: both read this variable.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        from prometheus_client import values

        values.ValueClass = values.MultiProcessValue()
        _m = _Instruments()
        _started = directory


def _clear_dead(directory: Path) -> None:
    for file in directory.glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition(directory: Path, extra: Iterable[object] = ()) -> tuple[bytes, str]:
    """The text format of every process's metrics in `directory`, and of `extra` (metric
    families from `gauge`), with its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    families = list(extra)
    if families:
        registry.register(_Fixed(families))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Fixed:
    def __init__(self, families: list[object]) -> None:
        self._families = families

    def collect(self) -> Iterable[object]:
        return self._families


def gauge(name: str, documentation: str, samples: Iterable[tuple[dict[str, str], float]],
          labels: tuple[str, ...] = ()) -> object:
    """A gauge family measured at scrape time (index age, document counts), for `exposition`."""
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values_, value in samples:
        family.add_metric([values_[label] for label in labels], value)
    return family


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples of an exposition by sample name (for tests and the bench): label sets, values."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _when_on(record: Callable[[_Instruments], None]) -> None:
    if _m is not None:
        record(_m)


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    outcome = ("ok" if status < 400 else "refused" if status in _REFUSALS
               else "client_error" if status < 500 else "error")
    _when_on(lambda m: m.request.labels(route, method, str(status), outcome).observe(seconds))
    if status in _REFUSALS:
        _when_on(lambda m: m.refused.labels(route, _REFUSALS[status]).inc())


_REFUSALS = {401: "unauthenticated", 403: "forbidden", 429: "rate_limited", 503: "unavailable"}


def record_answer(mode: str, tenants: Iterable[str]) -> None:
    """One chat answer, counted in each tenant the caller holds a principal of."""

    def record(m: _Instruments) -> None:
        for tenant in sorted(set(tenants)):
            m.answers.labels(mode, tenant).inc()

    _when_on(record)


def record_dropped(action: str, count: int) -> None:
    """Hits dropped by the second permission check; called for every retrieval, 0 included,
    so that the series exists (and an alert on it can be trusted) before anything is dropped."""
    _when_on(lambda m: m.dropped.labels(action).inc(count))


def record_llm(outcome: str, seconds: float, prompt_tokens: int | None = None,
               completion_tokens: int | None = None) -> None:
    def record(m: _Instruments) -> None:
        m.llm.labels(outcome).observe(seconds)
        if outcome != "ok":
            m.llm_errors.labels(outcome).inc()
        if prompt_tokens:
            m.llm_tokens.labels("prompt").inc(prompt_tokens)
        if completion_tokens:
            m.llm_tokens.labels("completion").inc(completion_tokens)
    _when_on(record)


def record_embedding(seconds: float) -> None:
    _when_on(lambda m: m.embedding.observe(seconds))


def record_search(ranking: str, seconds: float) -> None:
    _when_on(lambda m: m.search.labels(ranking).observe(seconds))


def record_audit(store: str, seconds: float, *, failed: bool) -> None:
    def record(m: _Instruments) -> None:
        m.audit.labels(store).observe(seconds)
        if failed:
            m.audit_failures.labels(store).inc()
    _when_on(record)


def record_job_started(source: str | None) -> None:
    _when_on(lambda m: m.jobs.labels(source or "all").inc())


def record_job_ended(outcome: str, seconds: float) -> None:
    _when_on(lambda m: m.job_duration.labels(outcome).observe(seconds))
