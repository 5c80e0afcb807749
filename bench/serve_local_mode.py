"""Serve the API over qdrant-client local mode: the bench's launcher, not a product entry point.

    .venv/bin/python bench/serve_local_mode.py --config CFG --qdrant-path DIR [--port P]

`clearance serve` picks its store from the settings: the embedded engine (EdgeBackend) or, with
`qdrant_url`, a Qdrant server. qdrant-client's local mode (`QdrantClient(path=...)`, brute force
in Python, used by the tests as `:memory:`) is neither, and `build_services` takes no backend.
So this launcher builds the services exactly as `create_app` would, except that while
`build_services` runs, `application.services.open_backend` returns
`ServerBackend(QdrantClient(path=DIR))`; it then checks that the catalog really got that backend
and serves the app with uvicorn as `clearance serve` does (same log level). Everything else
(settings, Casbin policy, API keys, embedder, audit log, routes) is the product's own.

A product change would make the patch unnecessary: `build_services(settings, embedder=None,
backend=None)` passing `backend` on to `open_catalog(settings, backend)`.

The local-mode directory can be opened by one process at a time (qdrant-client takes a lock on
it): the process that built it must have closed its client first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

import uvicorn  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402

import application.services  # noqa: E402
from api.app import create_app  # noqa: E402
from application.settings import load_settings  # noqa: E402
from retrieval.server_store import ServerBackend  # noqa: E402

PREFIX = "clearance"  # ServerBackend's default collection prefix


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--qdrant-path", type=Path, required=True,
                        help="the qdrant-client local-mode directory holding the versions")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    settings = load_settings(args.config.resolve())
    backend = ServerBackend(QdrantClient(path=str(args.qdrant_path)), PREFIX)
    with mock.patch.object(application.services, "open_backend", lambda _settings: backend):
        services = application.services.build_services(settings)
    if services.catalog.backend is not backend:
        raise SystemExit("build_services did not take its backend from "
                         "application.services.open_backend;"
                         " this launcher needs updating")
    uvicorn.run(create_app(settings, services), host=args.host, port=args.port,
                log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
