"""The `clearance` command: ingest, serve, keys, index versions and rollback, audit verify, db,
report and record."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from api.cli_reports import day, record_command, report_command
from application.admin import Actor
from application.errors import AdminError, Conflict, NotFound
from application.settings import Settings, config_path_from, load_settings
from control.errors import ControlError
from evaluation.beir import DatasetError
from ingest.errors import IngestError
from ingest.sources import printable
from observability.metrics import MetricsError
from policies.enforcer import PolicyError
from retrieval.errors import RetrievalError

if TYPE_CHECKING:
    from application.admin import AdminActions
    from control.keys import Kind as KeyKind
    from control.postgres import Database
    from control.quarantine import Kind
    from policies.enforcer import PolicyEngine

Command = Callable[[argparse.Namespace, Settings], int]


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_acl_overrides, open_catalog
    from ingest.jobs import build_lock
    from ingest.pipeline import build_index_version
    from retrieval.bm25 import Bm25Encoder
    from retrieval.embedder import Embedder

    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="file", desc="ingest", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    admin = _admin(settings)
    try:
        with build_lock(settings.data_dir):
            catalog = open_catalog(settings)
            _, overrides = open_acl_overrides(settings).current()
            report = build_index_version(
                settings.sources, settings.ingest, catalog=catalog,
                embedder=Embedder(), progress=progress, only_source=args.source,
                acl_overrides=overrides, bm25=Bm25Encoder(settings.retrieval.bm25),
            )
            removed = catalog.prune(settings.ingest.keep_versions)
    except (IngestError, RetrievalError) as exc:
        admin.record_build(Actor.cli(), args.source, None, outcome="failed", reason=str(exc))
        raise
    finally:
        if bar is not None:
            bar.close()
    admin.record_build(
        Actor.cli(), args.source, report.version_id, documents=report.documents,
        chunks=report.chunks, errors=len(report.errors), no_acl=len(report.no_acl),
        skipped=len(report.skipped))
    # Names and reasons come from file names: escaped, so a name cannot print a line of its own.
    for problem in report.skipped:
        print(f"skipped {printable(problem.doc_id)}: {printable(problem.reason)}")
    for problem in report.no_acl:
        print(f"skipped {printable(problem.doc_id)}: {printable(problem.reason)} "
              "(nobody may read it)")
    for problem in report.errors:
        print(f"error   {printable(problem.doc_id)}: {printable(problem.reason)}")
    print(f"index version {report.version_id} is now current: {report.documents} documents "
          f"({report.reused} reused), {report.chunks} chunks ({report.embedded_chunks} embedded), "
          f"{len(report.errors)} errors, {len(report.no_acl)} without ACL, "
          f"{len(report.skipped)} not read (links, unsafe names)")
    if removed:
        keep = settings.ingest.keep_versions
        print(f"removed old versions (keeping {keep}): {' '.join(removed)}")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from api.app import create_app
    from api.server import serve

    host = args.host or settings.server.host
    port = args.port or settings.server.port
    serve(create_app(settings), settings.server, host=host, port=port)
    return 0


def _admin(settings: Settings) -> AdminActions:
    from application.services import open_admin

    return open_admin(settings)


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    expires = timedelta(days=args.expires_days) if args.expires_days else None
    if args.service + args.frontend + args.provisioning > 1:
        raise ValueError("a key is one of --service, --frontend or --provisioning")
    kind: KeyKind = ("frontend" if args.frontend else "provisioning" if args.provisioning
                     else "service" if args.service else "personal")
    key, info = _admin(settings).create_key(
        Actor.cli(), args.name, name=args.label, kind=kind,
        scope="query" if kind in ("frontend", "provisioning") else args.scope,
        expires_in=expires)
    print(f"API key {info.id} ({info.kind}, scope {info.scope}, expires "
          f"{info.expires_at or 'never'}) for user:{args.name} (shown once; only its hash is "
          "stored):")
    print(key)
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    if args.id:
        if args.name:
            raise ValueError("give a user NAME or --id KEY_ID, not both")
        info = _admin(settings).revoke_key(Actor.cli(), args.id)
        print(f"revoked key {info.id} of user:{info.user}")
        return 0
    if not args.name:
        raise ValueError("give a user NAME (every key of theirs) or --id KEY_ID")
    count = _admin(settings).revoke_keys(Actor.cli(), args.name)
    print(f"revoked {count} key(s) of user:{args.name}")
    return 0


def _keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    key, info = _admin(settings).rotate_key(Actor.cli(), args.key_id,
                                            timedelta(hours=args.overlap_hours))
    print(f"API key {info.id} replaces {args.key_id} for user:{info.user}; the old key works "
          f"for {args.overlap_hours:g} more hour(s). The new key (shown once):")
    print(key)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_keys

    keys = open_keys(settings).list_keys(args.user)
    print(f"{'id':16}  {'user':16} {'name':12} {'kind':8} {'scope':5}  {'state':7}  "
          f"{'created':25}  {'expires':25}  last used")
    for k in keys:
        print(f"{k.id:16}  {k.user:16} {k.name:12} {k.kind:8} {k.scope:5}  {k.state():7}  "
              f"{k.created_at:25}  {k.expires_at or 'never':25}  {k.last_used_at or 'never'}")
    return 0


def _users_deactivate(args: argparse.Namespace, settings: Settings) -> int:
    entry = _admin(settings).deactivate_user(Actor.cli(), args.name, args.reason)
    print(f"user:{args.name} is deactivated since {entry.at} (by {entry.by}): refused at their "
          "next request, whatever key or token they hold")
    return 0


def _users_activate(args: argparse.Namespace, settings: Settings) -> int:
    _admin(settings).activate_user(Actor.cli(), args.name)
    print(f"user:{args.name} is active again")
    return 0


def _users_list(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_directory

    for user, entry in sorted(open_directory(settings).all_deactivated().items()):
        print(f"{user:24} deactivated {entry.at} by {entry.by}: {entry.reason}")
    return 0


def _index_versions(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_catalog

    catalog = open_catalog(settings)
    current = catalog.current()
    versions = catalog.sealed()
    if not versions:
        print("no index versions yet: run `clearance ingest`")
        return 0
    print(f"  {'id':<24} {'created':<32} {'documents':>9} {'chunks':>7}  embedder / sources / job")
    for info in versions:
        mark = "*" if info.id == current else " "
        print(f"{mark} {info.id:<24} {info.created_at:<32} {info.documents:>9} {info.chunks:>7}  "
              f"{info.embedder} / {','.join(info.sources)} / {info.job_id or 'cli'}")
    return 0


def _index_rollback(args: argparse.Namespace, settings: Settings) -> int:

    before, now = _admin(settings).rollback(Actor.cli(), args.to)
    print(f"index version {now} is now current (was {before})")
    return 0


def _acl_set(args: argparse.Namespace, settings: Settings) -> int:
    _admin(settings).set_acl(Actor.cli(), args.doc_id, args.allow)
    print(f"{printable(args.doc_id)}: readable by {' '.join(args.allow)} in every index "
          "version, from the next query on")
    return 0


def _acl_clear(args: argparse.Namespace, settings: Settings) -> int:
    try:
        _admin(settings).clear_acl(Actor.cli(), args.doc_id)
    except NotFound:
        print(f"{printable(args.doc_id)} has no ACL override; nothing changed")
        return 1
    print(f"{printable(args.doc_id)}: the config's ACL rules apply again, from the next query "
          "on")
    return 0


def _acl_show(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_catalog, open_document_access

    catalog = open_catalog(settings)
    access = open_document_access(settings, catalog)
    found = False
    for info in catalog.sealed():
        entry = catalog.documents(info.id).get(args.doc_id)
        if entry is None:
            continue
        found = True
        now = access.acl_now(entry, args.doc_id)
        print(f"{info.id}: built with {' '.join(entry.acl) or '(nobody)'}; "
              f"served with {' '.join(now) or '(nobody)'}")
    if not found:
        print(f"{printable(args.doc_id)} is in no index version")
        return 1
    return 0


def _policy_engine(settings: Settings) -> PolicyEngine:
    from application.services import open_policy

    return open_policy(settings)


def _policy_show(args: argparse.Namespace, settings: Settings) -> int:
    engine = _policy_engine(settings)
    print(f"# policy {engine.where} version {engine.version}")
    for line in [r.line() for r in engine.policy.rules] + [
            m.line() for m in engine.policy.memberships]:
        print(line)
    return 0


def _policy_change(args: argparse.Namespace, settings: Settings) -> int:
    admin = _admin(settings)
    lines = list(args.lines)
    if args.policy_command == "add":
        added, removed = admin.change_policy(Actor.cli(), add=lines)
    else:
        added, removed = admin.change_policy(Actor.cli(), remove=lines)
    print(f"{added} line(s) added, {removed} removed; policy version {admin.policy.version} "
          "(a running server applies it to its next request)")
    return 0 if added + removed else 1


def _policy_explain(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_catalog, open_document_access
    from retrieval.explain import explain_read

    catalog = open_catalog(settings)
    result = explain_read(_policy_engine(settings), open_document_access(settings, catalog),
                          catalog, args.user, args.doc_id)
    print(f"{'ALLOWED' if result.allowed else 'DENIED'}: {result.user} reading "
          f"{printable(result.doc_id)}")
    for reason in result.reasons:
        print(f"  {printable(reason)}")
    return 0 if result.allowed else 2


def _quarantine_target(args: argparse.Namespace) -> tuple[Kind, str]:
    if args.source:
        return "source", str(args.source)
    return "document", str(args.doc)


def _quarantine_add(args: argparse.Namespace, settings: Settings) -> int:
    kind, target = _quarantine_target(args)
    entry = _admin(settings).add_quarantine(Actor.cli(), kind, target, args.reason)
    print(f"{kind} {printable(target)} quarantined since {entry.at}: out of every caller's "
          "results from the next query on, until `clearance quarantine release`")
    return 0


def _quarantine_release(args: argparse.Namespace, settings: Settings) -> int:
    kind, target = _quarantine_target(args)
    try:
        _admin(settings).release_quarantine(Actor.cli(), kind, target)
    except NotFound:
        print(f"{kind} {printable(target)} is not quarantined; nothing changed")
        return 1
    print(f"{kind} {printable(target)} released")
    return 0


def _quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_quarantine

    entries = open_quarantine(settings).entries()
    for e in entries:
        print(f"{e.kind:<8} {printable(e.target)}  by {printable(e.by)} at {e.at}  "
              f"{printable(e.reason)}")
    if not entries:
        print("nothing is quarantined")
    return 0


def _pause(args: argparse.Namespace, settings: Settings) -> int:
    admin = _admin(settings)
    switch = admin.pause_switch
    if args.target is not None:
        if not args.reason:
            raise ValueError("say why with --reason; it is recorded and audited")
        admin.pause(Actor.cli(), args.target, args.reason)
        entry = getattr(switch.current(), args.target)
        effect = ("answers are extractive" if args.target == "generation"
                  else "search and chat answer 503")
        print(f"{args.target} paused since {entry.at} ({entry.by}): {effect} from the next "
              f"request on, until `clearance resume {args.target}`")
    state = switch.current()
    if state.problem:
        print(f"problem: {state.problem}")
    for target in ("generation", "service"):
        paused = getattr(state, target)
        print(f"{target:<10} " + (f"paused by {paused.by} at {paused.at}: {paused.reason}"
                                  if paused else "running"))
    return 0


def _resume(args: argparse.Namespace, settings: Settings) -> int:
    try:
        _admin(settings).resume(Actor.cli(), args.target)
    except Conflict:
        print(f"{args.target} is not paused; nothing changed")
        return 1
    print(f"{args.target} resumed")
    return 0


def _eval_beir(args: argparse.Namespace, settings: Settings | None) -> int:
    import tempfile

    from evaluation.beir import load_beir
    from evaluation.run import evaluate
    from retrieval.embedder import Embedder

    dataset = load_beir(Path(args.path), args.split)
    print(f"queries in split {args.split}: {len(dataset.queries)}", flush=True)

    def progress(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="clearance-eval-", dir=args.workdir) as root:
        report = evaluate(dataset, Path(root), embedder=Embedder(), permissions=args.permissions,
                          max_queries=args.max_queries, progress=progress,
                          rankings=args.rankings.split(",") if args.rankings else None)
    for line in report.lines():
        print(line)
    return 0 if report.leaks == 0 else 3


def _rankings(value: str) -> str:
    from evaluation.run import RANKINGS

    unknown = [name for name in value.split(",") if name not in RANKINGS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown ranking(s) {', '.join(unknown)}: choose from {', '.join(RANKINGS)}")
    return value


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_audit
    from control.audit import verify_audit_log

    anchor = Path(args.anchor) if args.anchor else None
    if args.log or args.head:
        if settings.database_url and not args.log:
            raise ValueError("--head is for a log file; the database's head is checked always")
        path: object = Path(args.log) if args.log else settings.audit_log
        result = verify_audit_log(Path(str(path)), Path(args.head) if args.head else None,
                                  key_path=None if args.log else settings.audit_key,
                                  anchor=anchor)
    else:
        audit = open_audit(settings)
        path, result = audit.describe(), audit.verify(anchor)
    for problem in result.problems:
        print(f"broken: {problem}")
    extra = "".join(f", {n} {what}" for n, what in (
        (result.unfinished, "unfinished (their requests were not answered)"),
        (result.failed_later, "follow-ups of failed requests")) if n)
    print(f"{path}: {result.records} records{extra}, {'ok' if result.ok else 'BROKEN'}")
    return 0 if result.ok else 1


def _audit_anchor(args: argparse.Namespace, settings: Settings) -> int:
    from application.services import open_audit

    try:
        anchor = open_audit(settings).anchor()
    except OSError as exc:
        raise ValueError(f"no anchor: {exc}") from None
    text = json.dumps(anchor)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"anchor at seq {anchor['seq']} written to {args.out}: keep it where the service "
              "cannot write, and check later logs with `clearance audit verify --anchor FILE`")
    else:
        print(text)
    return 0


def _database(settings: Settings) -> Database:
    from control.postgres import Database

    if settings.database_url is None:
        raise ValueError("no database_url in the config: the control plane is the files under "
                         f"{settings.data_dir}, which need no migration")
    return Database(settings.database_url.get_secret_value(), max_size=2)


def _db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from application.admin import record_database_change
    from application.services import close_databases, open_audit
    from control.postgres import LATEST

    db = _database(settings)
    try:
        applied = db.migrate()
    finally:
        db.close()
    for migration in applied:
        print(f"applied {migration.version}: {migration.name}")
    if applied:
        record_database_change(open_audit(settings), Actor.cli(), "db.migrate",
                               versions=[m.version for m in applied])
        close_databases()
    print(f"{db.where}: schema version {LATEST}" + ("" if applied else ", nothing to do"))
    return 0


def _db_status(args: argparse.Namespace, settings: Settings) -> int:
    from control.postgres import LATEST

    db = _database(settings)
    try:
        version = db.schema_version()
    finally:
        db.close()
    state = "up to date" if version == LATEST else f"behind: run `clearance db migrate` ({LATEST})"
    print(f"{db.where}: schema version {version}, {state}")
    return 0 if version == LATEST else 1


def _db_import(args: argparse.Namespace, settings: Settings) -> int:
    from application.admin import record_database_change
    from application.services import import_file_state, open_audit

    copied = import_file_state(settings)
    record_database_change(open_audit(settings), Actor.cli(), "db.import", copied=copied)
    for name, outcome in copied.items():
        print(f"{name}: {outcome}")
    return 0


def _doc_id(value: str) -> str:
    """Document ids are Unicode NFC, whatever form the terminal passed."""
    from policies.principals import normalize

    return normalize(value)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="config file (default: $CLEARANCE_CONFIG or ./clearance.toml)")
    parser = argparse.ArgumentParser(prog="clearance", parents=[common], description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Command, help: str, into: argparse._SubParsersAction = sub
            ) -> argparse.ArgumentParser:
        p = into.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    add("ingest", _ingest, "parse every source into a new index version and switch to it"
        ).add_argument("--source", default=None, metavar="NAME",
                       help="read only this source; carry the others over from the current version")
    serve = add("serve", _serve, "run the HTTP API")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)

    keys = sub.add_parser("keys", help="issue and revoke API keys").add_subparsers(
        dest="keys_command", required=True)
    create = add("create", _keys_create, "issue a key for user:NAME (printed last)", keys)
    create.add_argument("--label", default="default", help="a name for the key, listed")
    create.add_argument("--service", action="store_true", help="a service key (not personal)")
    create.add_argument("--frontend", action="store_true",
                        help="a trusted front-end's key (scope query): it names its signed-in "
                             "user in the header its [[frontends]] entry gives")
    create.add_argument("--provisioning", action="store_true",
                        help="the identity provider's SCIM provisioning key: accepted on "
                             "/scim/v2 only")
    create.add_argument("--scope", choices=("admin", "query"), default="admin",
                        help="admin: what the policy allows (default); query: search, chat "
                             "and completions only")
    create.add_argument("--expires-days", type=int, default=None, metavar="N",
                        help="the key stops working after N days (default: never)")
    create.add_argument("name")
    revoke = add("revoke", _keys_revoke, "revoke every key of user:NAME, or one key (--id)",
                 keys)
    revoke.add_argument("name", nargs="?", default=None)
    revoke.add_argument("--id", default=None, metavar="KEY_ID")
    rotate = add("rotate", _keys_rotate, "replace a key by a new one (printed last); the old "
                 "one keeps working for the overlap", keys)
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument("--overlap-hours", type=float, default=24.0, metavar="H")
    add("list", _keys_list, "every key: id, user, name, kind, scope, state, created, expires, "
        "last used (never the key)", keys).add_argument("--user", default=None)

    users = sub.add_parser("users", help="deactivate users: refused whatever they hold"
                           ).add_subparsers(dest="users_command", required=True)
    deactivate = add("deactivate", _users_deactivate, "refuse user:NAME from their next "
                     "request on, with any key, token or front-end", users)
    deactivate.add_argument("name")
    deactivate.add_argument("--reason", required=True, help="why; recorded and audited")
    add("activate", _users_activate, "lift a deactivation", users).add_argument("name")
    add("list", _users_list, "the deactivated users", users)

    index = sub.add_parser("index", help="index versions").add_subparsers(
        dest="index_command", required=True)
    add("versions", _index_versions, "list index versions (* marks the current one)", index)
    add("rollback", _index_rollback, "switch to the previous or the named version",
        index).add_argument("--to", default=None, metavar="VERSION")

    acl = sub.add_parser("acl", help="per-document ACLs, applied to every index version "
                         "without re-indexing").add_subparsers(dest="acl_command", required=True)
    acl_set = add("set", _acl_set, "make DOC_ID readable by exactly the given principals", acl)
    acl_set.add_argument("doc_id", metavar="DOC_ID", type=_doc_id)
    acl_set.add_argument("--allow", action="append", required=True, metavar="PRINCIPAL",
                         help="user:NAME, group:NAME or role:NAME; repeat for several")
    add("clear", _acl_clear, "drop DOC_ID's override: the config rules apply again",
        acl).add_argument("doc_id", metavar="DOC_ID", type=_doc_id)
    add("show", _acl_show, "DOC_ID's ACL in each index version, as built and as served",
        acl).add_argument("doc_id", metavar="DOC_ID", type=_doc_id)

    policy = sub.add_parser("policy", help="the Casbin policy: show, change, explain"
                            ).add_subparsers(dest="policy_command", required=True)
    add("show", _policy_show, "print the policy in force and its version", policy)
    for verb, text in (("add", "append lines"), ("remove", "delete lines")):
        add(verb, _policy_change, f"{text} in the policy file's format, e.g. "
            "'g, user:dave, group:staff' (checked first; in force at the next request)",
            policy).add_argument("lines", nargs="+", metavar="LINE")
    explain = add("explain", _policy_explain,
                  "whether USER may read DOC_ID now, and the rules that decide it", policy)
    explain.add_argument("user", metavar="USER")
    explain.add_argument("doc_id", metavar="DOC_ID", type=_doc_id)

    quarantine = sub.add_parser("quarantine", help="take a document or source out of every "
                                "caller's results").add_subparsers(
        dest="quarantine_command", required=True)
    for verb, func, text in (("add", _quarantine_add, "quarantine a document or a source"),
                             ("release", _quarantine_release, "release a quarantine")):
        q = add(verb, func, text, quarantine)
        target = q.add_mutually_exclusive_group(required=True)
        target.add_argument("--doc", metavar="DOC_ID", type=_doc_id)
        target.add_argument("--source", metavar="NAME")
        if verb == "add":
            q.add_argument("--reason", required=True, help="why; recorded and audited")
    add("list", _quarantine_list, "what is quarantined, by whom, when and why", quarantine)

    pause = add("pause", _pause, "pause answer generation (answers become extractive) or the "
                "whole service (503); with no TARGET, show what is paused")
    pause.add_argument("target", nargs="?", choices=("generation", "service"), metavar="TARGET",
                       help="generation or service")
    pause.add_argument("--reason", default="", help="why; recorded and audited")
    add("resume", _resume, "undo `clearance pause TARGET`").add_argument(
        "target", choices=("generation", "service"), metavar="TARGET",
        help="generation or service")

    evaluation = sub.add_parser("eval", help="measure retrieval quality").add_subparsers(
        dest="eval_command", required=True)
    beir = add("beir", _eval_beir, "ingest a BEIR dataset (corpus.jsonl, queries.jsonl, "
               "qrels/) into a throw-away data dir and print nDCG@10, Recall@100, MRR@10; "
               "exit 3 on any leak", evaluation)
    beir.add_argument("path", metavar="PATH", help="e.g. ../shared/data/scifact")
    beir.add_argument("--split", default="test")
    beir.add_argument("--permissions", action="store_true",
                      help="synthetic group ACLs; each query asked as several users; count leaks")
    beir.add_argument("--max-queries", type=int, default=None, metavar="N")
    beir.add_argument("--workdir", default=None, help="where the throw-away data dir goes")
    beir.add_argument("--rankings", default=None, metavar="NAMES", type=_rankings,
                      help="comma-separated rankings to compare (default all: "
                           "dense,sparse,hybrid-rrf,hybrid-rrf-2:1,hybrid-rrf-1:2,hybrid-dbsf); "
                           "the configured default is always scored")
    beir.set_defaults(needs_config=False)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True)
    verify = add("verify", _audit_verify, "check the audit log's hash chain", audit)
    verify.add_argument("--log", default=None, help="a log file other than the configured one")
    verify.add_argument("--head", default=None, help="the head file to check the log against")
    verify.add_argument("--anchor", default=None, metavar="FILE",
                        help="an anchor from `clearance audit anchor`: the log must still hold "
                             "that record, however much it has grown since")
    add("anchor", _audit_anchor, "print (or --out FILE) a signed checkpoint of the log's "
        "head, to keep elsewhere", audit).add_argument("--out", default=None, metavar="FILE")

    report = add("report", report_command, "usage by tenant, source and day, answer modes and "
                 "abstentions, content gaps, down-rated answers, unusual access and stale "
                 "sources, from the audit log")
    report.add_argument("--since", type=day, default=None, metavar="DATE",
                        help="from this UTC day on (YYYY-MM-DD); default: the whole log")
    report.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    report.add_argument("--plot", default=None, metavar="FILE",
                        help="also write a PNG chart of daily usage and abstention")
    add("record", record_command, "the integration record: sources and owners, who holds "
        "each admin action, what leaves the boundary, where the audit log is, who may pause"
        ).add_argument("--json", action="store_true", help="JSON instead of Markdown")

    db = sub.add_parser("db", help="the PostgreSQL control plane (database_url)").add_subparsers(
        dest="db_command", required=True)
    add("migrate", _db_migrate, "apply the schema migrations this release needs", db)
    add("status", _db_status, "the schema version, and what the database holds", db)
    add("import", _db_import, "copy the file state (policy, keys, ACL overrides, quarantine, "
        "pause) into the database, where it holds none yet", db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = (load_settings(config_path_from(getattr(args, "config", None)))
                    if getattr(args, "needs_config", True) else None)
        return int(args.func(args, settings))
    except (AdminError, IngestError, PolicyError, RetrievalError, ControlError, DatasetError,
            MetricsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
