"""GET /metrics: the Prometheus text format, for a scraper holding `[metrics] token`.

Off (404) unless a token is configured; a missing or wrong token is 401. The token is the
scraper's alone: API keys do not open this route, and it opens nothing else.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Header, HTTPException, Response

from api.deps import Public, ServicesDep
from application.index_facts import AGE_BANDS
from observability import metrics
from retrieval.errors import StoreError

router = APIRouter()


@router.get("/metrics", include_in_schema=False, dependencies=[Public])
def scrape(services: ServicesDep, authorization: str | None = Header(default=None)
           ) -> Response:
    token = services.settings.metrics.token
    if token is None:
        raise HTTPException(status_code=404, detail="metrics are off: set [metrics] token")
    expected = f"Bearer {token.get_secret_value()}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        raise HTTPException(status_code=401, detail="send 'Authorization: Bearer <token>' with "
                            "the [metrics] token", headers={"WWW-Authenticate": "Bearer"})
    body, content_type = metrics.exposition(services.settings.metrics_dir, _index_gauges(services))
    return Response(body, media_type=content_type)


def _index_gauges(services: ServicesDep) -> list[object]:
    try:
        facts = services.index_facts.facts()
    except StoreError:
        return [metrics.gauge("clearance_index_readable", "Whether the index could be read "
                              "at this scrape", [({}, 0.0)])]
    bands = [({"source": source, "age": band}, float(facts.by_source_age.get((source, band), 0)))
             for source in sorted({s for s, _ in facts.by_source_age})
             for band, _ in AGE_BANDS]
    gauges = [
        metrics.gauge("clearance_index_readable", "Whether the index could be read at this "
                      "scrape", [({}, 1.0)]),
        metrics.gauge("clearance_index_documents", "Documents in the current index version",
                      [({}, float(facts.documents))]),
        metrics.gauge("clearance_source_documents", "Documents of the current index version "
                      "by source and age of their source_modified_at (age: under 1d, 7d, 30d, "
                      "90d, 365d, or older)", bands, labels=("source", "age")),
    ]
    if facts.age_s is not None:
        gauges.append(metrics.gauge("clearance_index_version_age_seconds", "Seconds since the "
                                    "current index version was built", [({}, facts.age_s)]))
    return gauges
