"""facegate: serve the API, migrate the database, bulk-enroll a folder, export the networks to ONNX, evaluate
accuracy, export the OpenAPI schema."""

import argparse
import json
import logging
import os
import sys
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from core.enums import Role
from core.errors import FaceGateError, SetupError
from core.settings import get_settings
from core.tls import MAX_DAYS, check_pair, make_self_signed

if TYPE_CHECKING:
    from services.faces.pipeline import FacePipeline
    from services.identity.folder_import import Outcome, Person
    from services.identity.members import Consent

T = TypeVar("T")

log = logging.getLogger("facegate")


def _pipeline() -> "FacePipeline":
    from services.faces.pipeline import FacePipeline

    pipeline = FacePipeline(get_settings())
    pipeline.load()
    return pipeline


def _open_database(*, create: bool = False) -> None:
    """Every command that uses the database brings its schema up to date first. Only `migrate` (and `serve`) may
    start a new, empty embedded database: the others refuse when they find none, since one run from another folder
    would otherwise fill a database that no service reads."""
    from db.migrate import upgrade_to_head

    settings = get_settings()
    pgdata = (settings.data_dir / "pgdata").resolve()
    if not create and settings.database_url is None and not (pgdata / "PG_VERSION").exists():
        raise SystemExit(
            f"facegate: no FaceGate database in {pgdata}.\n"
            f"The embedded database lives in the data folder (FACEGATE_DATA_DIR, now {settings.data_dir}; the current "
            f"folder is {Path.cwd()}). Point at the one `facegate serve` uses: run from its folder, pass "
            "--data-dir PATH (or set FACEGATE_DATA_DIR), or set DATABASE_URL for a PostgreSQL server. "
            "`facegate migrate` creates a new, empty database here."
        )
    upgrade_to_head()


def _progress(desc: str, total: int | None = None) -> Callable[[Iterable[T]], Iterable[T]]:
    from tqdm import tqdm

    return lambda items: tqdm(items, desc=desc, unit="img", total=total, file=sys.stderr)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from api.server import server_options
    from core.logs import configure_logging

    settings = get_settings()
    configure_logging(
        settings.log_format,
        settings.log_level,
        repeat_limit=settings.log_repeat_limit,
        repeat_interval=settings.log_repeat_interval_seconds,
    )
    tls = check_pair(settings.tls_cert_file, settings.tls_key_file)
    # Here rather than only in the app's startup (which finds both done): a database that cannot be reached, or
    # weights that cannot be found, are then one line instead of a traceback.
    _open_database(create=True)
    if settings.preload_models and settings.inference_runtime == "onnx":
        from services.faces.export import pipeline_networks
        from services.faces.runtime import export_missing

        export_missing(settings, pipeline_networks(settings))
    # log_config=None: uvicorn's lines go through the handler above. Its access log is off: it writes the raw
    # path and query (which can hold names); api/observability.py logs each request by route template instead.
    uvicorn.run(
        "api.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        **server_options(settings),
        ssl_certfile=tls.cert_file if tls else None,
        ssl_keyfile=tls.key_file if tls else None,
    )


def make_cert(args: argparse.Namespace) -> None:
    directory = args.out or get_settings().data_dir / "tls"
    pair = make_self_signed(args.host, directory, days=args.days)
    print(f"certificate: {pair.cert_file}\nkey:         {pair.key_file}")
    print("Serve HTTPS with them:")
    print(
        f"  FACEGATE_TLS_CERT_FILE={pair.cert_file} FACEGATE_TLS_KEY_FILE={pair.key_file} facegate serve --host 0.0.0.0"
    )
    print(f"then open https://{args.host[0]}:8000/desk on the desk computers, after trusting {pair.cert_file.name}")
    print("there (README: HTTPS on a LAN).")


def migrate(_: argparse.Namespace) -> None:
    _open_database(create=True)
    print("database schema is up to date")


# Enrolls the people's photos, telling each photo's outcome as soon as it is known.
Enroll = Callable[[list["Person"]], Iterator[tuple[Path, "Outcome"]]]


@contextmanager
def _local_enroller(args: argparse.Namespace) -> Iterator[Enroll]:
    """Into this machine's database, with the models loaded here (services.identity.folder_import)."""
    from services.identity import folder_import
    from services.identity.calibration import GalleryCalibration

    settings = get_settings()
    _open_database()
    pipeline = _pipeline()
    gallery = GalleryCalibration(settings)
    consent = _import_consent(args)
    yield lambda people: folder_import.enroll_people(
        pipeline, settings, gallery, people, largest=args.largest, allow_duplicate=args.allow_duplicate,
        consent=consent,
    )  # fmt: skip


@contextmanager
def _remote_enroller(args: argparse.Namespace) -> Iterator[Enroll]:
    """Through a running FaceGate's API (facegate_client; the key from FACEGATE_API_KEY): --batch people per
    request (POST /v1/members/batch), each signed up with all its photos. A refused photo is left out and the
    person sent again with the others. A member that exists already gets the rest of its photos one by one when an
    earlier run did some of them; otherwise an interrupted run signed it up after its last journal line (the batch
    answers `exists` and writes nothing), and its photos are counted as enrolled before."""
    try:
        from facegate_client import FaceGate, FaceGateAPIError, NewMember
    except ModuleNotFoundError:  # the client is its own package, not part of the server's install
        raise ValueError("--url needs the Python client: pip install ./clients/python (from the repository)")

    options = {"largest": args.largest, "allow_duplicate": args.allow_duplicate}
    with FaceGate(args.url) as facegate:

        def add_faces(member_id: str, photos: list[Path]) -> Iterator[tuple[Path, "Outcome"]]:
            for path in photos:
                try:
                    facegate.add_face(member_id, path, **options)
                    yield path, "enrolled"
                except FaceGateAPIError as exc:
                    yield path, (exc.code, exc.message)

        def enroll(people: list["Person"]) -> Iterator[tuple[Path, "Outcome"]]:
            pending = deque(people)
            while pending:
                batch = [pending.popleft() for _ in range(min(args.batch, len(pending)))]
                try:
                    answer = facegate.signup_batch(
                        [NewMember(p.external_id, p.display_name, photos=p.photos,
                                   consent_text_version=args.consent_text_version) for p in batch],
                        **options,
                    )  # fmt: skip
                except FaceGateAPIError as exc:  # the whole request refused: nothing of it was stored
                    raise SystemExit(
                        f"the service refused a batch of {len(batch)} people ({exc.code}: {exc.message}); "
                        "what is done is in the journal: run again, with a smaller --batch if the batch was too big"
                    ) from exc
                for person, item in zip(batch, answer["items"], strict=True):
                    error = item["error"]
                    if item["status"] == "created":
                        yield from ((path, "enrolled") for path in person.photos)
                    elif item["status"] == "exists" and person.resumed:
                        yield from add_faces(str(item["member_id"]), person.photos)
                    elif item["status"] == "exists":
                        yield from ((path, "exists") for path in person.photos)
                    elif error and "photo_index" in error["details"]:
                        refused = person.photos[error["details"]["photo_index"]]
                        yield refused, (error["code"], error["message"])
                        others = [path for path in person.photos if path != refused]
                        if others:
                            pending.appendleft(person._replace(photos=others))
                    elif error:
                        yield from ((path, (error["code"], error["message"])) for path in person.photos)

        yield enroll


def _import_consent(args: argparse.Namespace) -> "Consent | None":
    """The consent every person of an import gave (--consent-text-version, recorded as given now); an import into
    this machine's database without it stops when FACEGATE_REQUIRE_CONSENT is on, as a signup through the API
    would be refused (a service at --url decides that for itself)."""
    from sqlalchemy import String

    from db.models import Member
    from services.identity.members import Consent

    longest = cast(String, Member.__table__.c.consent_text_version.type).length or 0
    if args.consent_text_version and len(args.consent_text_version) > longest:
        raise SystemExit(f"--consent-text-version: at most {longest} characters")
    if args.consent_text_version:
        return Consent(args.consent_text_version, datetime.now(UTC))
    if get_settings().require_consent:
        raise SystemExit(
            "FACEGATE_REQUIRE_CONSENT is on: pass --consent-text-version with the consent text every person in this"
            " import agreed to"
        )
    return None


def _default_journal(args: argparse.Namespace) -> Path:
    """One journal per folder and target: a run into another database or service, or of another folder with the
    same name, keeps its own record of what it has done."""
    import hashlib

    settings = get_settings()
    folder = args.folder.resolve()
    target = args.url.rstrip("/") if args.url else f"local {settings.database_url or settings.data_dir.resolve()}"
    key = hashlib.sha256(f"{folder}\n{target}".encode()).hexdigest()[:16]
    return settings.data_dir / "enroll-folder" / f"{folder.name}-{key}.journal"


def enroll_folder(args: argparse.Namespace) -> None:
    """One member per sub-folder (external id = folder name), each image enrolled through the quality gate, here
    or (--url) in a running service. Every photo done (enrolled or rejected) is appended to a journal; run again
    after an interruption, the photos in it are skipped."""
    import time

    from services.identity import folder_import

    journal = args.journal or _default_journal(args)
    journal.parent.mkdir(parents=True, exist_ok=True)
    done = set(journal.read_text().splitlines()) if journal.exists() else set()
    found = folder_import.plan(args.folder, per_person=args.per_person, done=done)
    people, todo = found.people, found.todo
    if found.total and not todo:
        target = args.url or "this machine's database"
        raise SystemExit(
            f"nothing to send: the journal {journal} lists all {found.total} photos of {args.folder.resolve()} as "
            f"done for {target}; to enroll them again, delete it or pass another --journal"
        )
    if todo < found.total:
        print(f"resuming: {found.total - todo} photos already done (journal {journal})")
    enrolled, existed, rejects = 0, 0, []
    start = time.perf_counter()
    with (_remote_enroller if args.url else _local_enroller)(args) as enroll, journal.open("a") as written:
        try:
            for path, outcome in _progress("enrolling", total=todo)(enroll(people)):
                if outcome == "enrolled":
                    enrolled += 1
                elif outcome == "exists":
                    existed += 1
                else:
                    rejects.append((path, *outcome))
                written.write(f"{path.resolve()}\n")
                written.flush()
        except KeyboardInterrupt:
            raise SystemExit(
                f"interrupted after {enrolled + existed + len(rejects)} of {todo} photos; "
                f"run the same command again to carry on (journal {journal})"
            ) from None
    seconds = time.perf_counter() - start
    print(
        f"enrolled {enrolled} of {todo} photos of {found.folders} people; {len(rejects)} rejected;"
        + (f" {existed} enrolled before, by an interrupted run;" if existed else "")
        + f" {todo / seconds if seconds else 0:.1f} photos/s"
    )
    for code, count in Counter(code for _, code, _ in rejects).most_common():
        print(f"  {code}: {count}")
    for path, code, message in rejects[: args.show_rejects]:
        print(f"  {path}: {code}: {message}")


def import_embeddings(args: argparse.Namespace) -> None:
    """Members from precomputed embeddings (services.identity.bulk): an .npz with `external_id`, `embedding`
    (N x 128) and optionally `display_name`."""
    import numpy as np

    from db.session import get_engine
    from services.identity.bulk import import_embeddings as run_import

    try:
        data = np.load(args.file)
        external_ids = [str(x) for x in data["external_id"]]
        names = [str(x) for x in data["display_name"]] if "display_name" in data else external_ids
        embeddings = data["embedding"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{args.file} is not an .npz with external_id and embedding arrays: {error}") from None
    from tqdm import tqdm

    _open_database()
    bar = tqdm(total=len(external_ids), desc="importing", unit="member", file=sys.stderr)

    def progress(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    report = run_import(
        get_engine(),
        external_ids,
        names,
        embeddings,
        consent=_import_consent(args),
        batch_size=args.batch,
        rebuild_index=args.rebuild_index,
        progress=progress,
    )
    bar.close()
    index = f"; index built in {report.index_seconds:.1f} s" if report.index_seconds is not None else ""
    print(
        f"imported {report.imported} members ({report.skipped} already there) in {report.load_seconds:.1f} s,"
        f" {report.rows_per_second:.0f}/s{index}"
    )


def keys(args: argparse.Namespace) -> None:
    """Create, list and revoke API keys (audited as actions of "cli")."""
    from db.session import session_scope
    from services.identity import auth

    _open_database()
    with session_scope() as session:
        if args.action == "create":
            key, raw = auth.create_key(session, name=args.name, role=Role(args.role), actor=None)
            print(f"created {key.role} key {key.id} ({key.name}); store it now, it is not shown again:\n{raw}")
        elif args.action == "revoke":
            key = auth.revoke_key(session, args.id, actor=None)
            print(f"revoked {key.id} ({key.name})")
        else:
            for key in auth.list_keys(session):
                state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                print(f"{key.id}  {key.prefix}...  {key.role:8s} {state:18s} {key.name}")


def backup(args: argparse.Namespace) -> None:
    from db.backup import backup
    from db.session import resolve_database_url

    backup(resolve_database_url(get_settings()), args.file)
    print(f"database written to {args.file} ({args.file.stat().st_size:,} bytes)")


def restore(args: argparse.Namespace) -> None:
    from db.backup import restore
    from db.session import resolve_database_url

    restore(resolve_database_url(get_settings()), args.file, replace=args.replace)
    print(f"database restored from {args.file}; restart the service (it migrates to this version at start)")


def purge_crops(_: argparse.Namespace) -> None:
    from db.session import session_scope
    from services.identity.retention import purge_expired_crops

    _open_database()
    days = get_settings().crop_retention_days
    with session_scope() as session:
        print(f"erased {purge_expired_crops(session, days)} probe crops older than {days:g} days")


def openapi(args: argparse.Namespace) -> None:
    """The schema /openapi.json serves; docs/openapi.json is this, kept in the repository for client generators
    (tests/api/test_openapi.py fails when it drifts from the app)."""
    from api.main import app

    schema = json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
    if str(args.out) == "-":
        sys.stdout.write(schema)
    else:
        args.out.write_text(schema)
        print(f"OpenAPI schema written to {args.out}")


def eval_lfw(args: argparse.Namespace) -> None:
    from services.evaluation.verification import lfw_embeddings, read_lfw_pairs, verification_report

    pairs = read_lfw_pairs(args.lfw / "pairs.txt", args.folds)
    embeddings, missed = lfw_embeddings(
        _pipeline(), args.lfw / "images", [p.left for p in pairs] + [p.right for p in pairs], _progress("embedding")
    )
    report = verification_report(pairs, embeddings, missed, get_settings().match_threshold)
    print(f"LFW folds {args.folds}: {report.pairs} pairs, no face found in {len(missed)} images")
    print(f"  10-fold accuracy (threshold chosen on 9/10): {report.cv_accuracy:.2%} ± {report.cv_accuracy_std:.2%}")
    print(
        f"  most accurate threshold on these pairs: {report.best_threshold:.3f}; "
        f"strict (no false accept on these pairs): {report.strict_threshold:.3f}"
    )
    print(
        f"  at the configured threshold {report.threshold:.3f}: accuracy {report.accuracy:.2%}, "
        f"false accept rate {report.false_accept_rate:.2%}, false reject rate {report.false_reject_rate:.2%}"
    )
    print(
        f"  mean distance: same person {report.mean_distance_same:.3f}, "
        f"different people {report.mean_distance_different:.3f}"
    )
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))


def eval_identify(args: argparse.Namespace) -> None:
    """Open-set identification on a private, temporary embedded database (never the service's own)."""
    import shutil
    import tempfile

    from db.session import stop_embedded_postgres
    from services.evaluation.identification import det_plot, evaluate_identification
    from services.evaluation.visits import evaluate_visits

    data_dir = Path(tempfile.mkdtemp(prefix="facegate-eval-"))
    os.environ["FACEGATE_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("FACEGATE_DATABASE_URL", None)
    get_settings.cache_clear()
    settings = get_settings()
    log.info("evaluating on a temporary database in %s (removed at the end)", data_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        _open_database(create=True)  # its own new database, never the service's
        if args.visits:
            results = evaluate_visits(
                _pipeline(), settings, args.folder, visits=args.visits, progress=_progress("analysing")
            )
            print(
                "learning  members  regulars  strangers   DIR   wrongly named  review   FPIR   learned  wrongly learned"
            )
            for r in results:
                print(
                    f"{'on' if r.learning else 'off':>8}  {r.members:7d}  {r.regulars:8d}  {r.strangers:9d}  {r.dir:.3f}"
                    f"  {r.wrongly_named:13.3f}  {r.review:.3f}  {r.fpir:.3f}  {r.faces_learned:7d}  {r.wrongly_learned:15d}"
                )
            (args.out / f"eval-visits-{args.visits}.json").write_text(
                json.dumps([asdict(r) for r in results], indent=2)
            )
            return
        reports = evaluate_identification(
            _pipeline(),
            settings,
            args.folder,
            enroll=args.enroll,
            member_min_photos=args.member_min_photos,
            gallery_sizes=[None if size == 0 else size for size in args.gallery_sizes],
            progress=_progress("analysing"),
        )
    finally:  # the temporary database goes with the run
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    for report in reports:
        print(
            f"{report.enroll_per_member} photo(s) per member: {report.members_available} members, "
            f"{report.strangers} strangers, {report.enroll_refused} enrollment photos refused by the gate"
        )
        print("  members  genuine  strangers  accept_s   DIR    FPIR   review(g/s)   FNIR@FPIR1%  FNIR@FPIR5%")
        for g in report.galleries:
            print(
                f"  {g.members:7d}  {g.genuine_probes:7d}  {g.stranger_probes:9d}  {g.accept_score:8.3f}  "
                f"{g.dir:.3f}  {g.fpir:.3f}  {g.genuine_review:.3f}/{g.stranger_review:.3f}   "
                f"{g.fnir_at_fpir_1:.3f}        {g.fnir_at_fpir_5:.3f}"
            )
        det_plot(report, args.out / f"det-{report.enroll_per_member}-photos.png")
    (args.out / "eval-identify.json").write_text(json.dumps([asdict(r) for r in reports], indent=2))
    print(f"DET plots and JSON in {args.out}")


def eval_expression(args: argparse.Namespace) -> None:
    from services.evaluation.expression import evaluate_expressions

    report = evaluate_expressions(_pipeline(), args.folder, progress=_progress("classifying"))
    print(f"{report.images} images, accuracy {report.accuracy:.2%}")
    width = max(len(label) for label in report.labels)
    print(" " * (width + 2) + " ".join(f"{label[:7]:>7}" for label in report.labels) + "   (rows: true label)")
    for label, row in zip(report.labels, report.confusion, strict=True):
        print(f"  {label:>{width}} " + " ".join(f"{n:7d}" for n in row) + f"   {report.per_label_accuracy[label]:.1%}")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))


def export_models(args: argparse.Namespace) -> None:
    from services.faces.export import export_networks

    settings = get_settings()
    written = export_networks(settings, overwrite=args.force)
    print(
        f"{len(written)} networks exported to {settings.data_dir / 'onnx'}"
        + (f": {', '.join(written)}" if written else "")
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _consent_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--consent-text-version",
        help="the consent text every person in the import agreed to, recorded with each new member (docs/privacy.md)",
    )


def _common_options(parser: argparse.ArgumentParser, default: object) -> None:
    """Options taken before or after the command (`facegate -v keys list`, `facegate keys list -v`)."""
    parser.add_argument(
        "--data-dir", type=Path, default=default, help="the data folder (FACEGATE_DATA_DIR; default ./data)"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="log what happens (-vv: debug); quiet by default"
    )


def main(argv: list[str] | None = None) -> None:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="facegate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"facegate {version('facegate')}")
    _common_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, argparse.SUPPRESS)  # after the command, without resetting what came before it
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **options: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], **options)

    p = command("serve", help="run the API (migrates and loads the models first)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=serve)

    p = command("make-cert", help="make a self-signed HTTPS certificate for a LAN host name")
    p.add_argument("--host", action="append", required=True, help="the server's name or IP address (repeatable)")
    p.add_argument("--days", type=int, default=MAX_DAYS, help="valid for this many days")
    p.add_argument("--out", type=Path, help="folder to write HOST.crt and HOST.key (default: DATA_DIR/tls)")
    p.set_defaults(func=make_cert)

    p = command("migrate", help="apply database migrations")
    p.set_defaults(func=migrate)

    p = command("enroll-folder", help="enroll FOLDER/<person>/<photos>, one member per sub-folder")
    p.add_argument("folder", type=Path)
    p.add_argument("--per-person", type=int, default=None, help="at most this many photos per person")
    p.add_argument("--largest", action="store_true", help="enroll the largest face of photos with several")
    p.add_argument("--allow-duplicate", action="store_true", help="skip the duplicate-signup check")
    p.add_argument("--show-rejects", type=int, default=20, help="list this many rejected photos")
    p.add_argument("--url", help="enroll through the API of a running FaceGate here (key: FACEGATE_API_KEY)")
    p.add_argument(
        "--journal", type=Path, help="photos done so far (default: under the data folder, one per folder and target)"
    )
    p.add_argument("--batch", type=_positive, default=16, help="with --url: people signed up per request")
    _consent_option(p)
    p.set_defaults(func=enroll_folder)

    p = command("import-embeddings", help="members from precomputed embeddings (.npz), by COPY")
    p.add_argument("file", type=Path, help="arrays external_id, embedding (N x 128), optional display_name")
    p.add_argument("--batch", type=int, default=50_000, help="rows per transaction (an interrupted run resumes)")
    p.add_argument("--rebuild-index", action="store_true", help="drop the search index and build it once at the end")
    _consent_option(p)
    p.set_defaults(func=import_embeddings)

    p = command("keys", help="manage API keys")
    key_actions = p.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--role",
        choices=[role.value for role in Role],
        required=True,
        help="identify: cameras and doors; service: the member system; admin: everything (README: API keys)",
    )
    key_actions.add_parser("list", parents=[common], help="list keys (never their values)")
    revoke = key_actions.add_parser("revoke", parents=[common], help="revoke a key")
    revoke.add_argument("id", type=uuid.UUID)
    p.set_defaults(func=keys)

    p = command("backup", help="write the whole database to FILE (pg_dump's custom format)")
    p.add_argument("file", type=Path)
    p.set_defaults(func=backup)

    p = command("restore", help="load a backup into the database (stop the service first)")
    p.add_argument("file", type=Path)
    p.add_argument("--replace", action="store_true", help="overwrite the FaceGate tables the database holds")
    p.set_defaults(func=restore)

    p = command("purge-crops", help="erase probe crops older than the retention period now")
    p.set_defaults(func=purge_crops)

    p = command("openapi", help="write the API's OpenAPI schema (docs/openapi.json)")
    p.add_argument("--out", type=Path, default=Path("docs/openapi.json"), help="- for standard output")
    p.set_defaults(func=openapi)

    p = command("export-models", help="export the networks to ONNX into DATA_DIR/onnx (serve does it on first start)")
    p.add_argument("--force", action="store_true", help="export again even where a file exists")
    p.set_defaults(func=export_models)

    p = command("eval-lfw", help="LFW pairs accuracy of the full pipeline")
    p.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"), help="folder with pairs.txt and images/")
    p.add_argument("--folds", type=int, nargs="+", default=[1])
    p.add_argument("--json", type=Path)
    p.set_defaults(func=eval_lfw)

    p = command("eval-identify", help="open-set 1:N accuracy (DIR, FPIR, DET) on FOLDER/<person>/")
    p.add_argument("folder", type=Path, nargs="?", default=Path("../shared/data/lfw/images"))
    p.add_argument("--enroll", type=int, nargs="+", default=[3, 1], help="photos enrolled per member")
    p.add_argument("--member-min-photos", type=int, default=4, help="people with this many photos are members")
    p.add_argument("--gallery-sizes", type=int, nargs="+", default=[50, 100, 150, 0], help="0 = every member")
    p.add_argument("--out", type=Path, default=Path("docs/eval-identify"))
    p.add_argument(
        "--visits", type=int, default=0,
        help="instead: one-photo members over N rounds of visits that may learn, then a final visit (learning off/on)",
    )  # fmt: skip
    p.set_defaults(func=eval_identify)

    p = command("eval-expression", help="expression accuracy on FOLDER/<label>/<images>")
    p.add_argument("folder", type=Path, nargs="?", default=Path("../shared/data/fer2013_test"))
    p.add_argument("--json", type=Path)
    p.set_defaults(func=eval_expression)

    args = parser.parse_args(argv)
    # Warnings only, unless asked: the commands print what they did; third-party INFO lines are noise there.
    levels = [logging.WARNING, logging.INFO, logging.DEBUG]
    logging.basicConfig(
        level=levels[min(args.verbose or 0, 2)], format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.data_dir is not None:  # as if FACEGATE_DATA_DIR were set, for this process and what it starts
        os.environ["FACEGATE_DATA_DIR"] = str(args.data_dir)
        get_settings.cache_clear()
    try:
        args.func(args)
    except (ValueError, SetupError, FaceGateError) as error:  # bad input or settings: say what, without a traceback
        parser.exit(2, f"facegate {args.command}: {error}\n")


if __name__ == "__main__":
    main()
