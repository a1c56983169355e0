"""``homeward``: serve, migrate, demo, user-create, user-promote, each with --help.

Settings come from ``HOMEWARD_*`` environment variables; options override them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import msgspec

from server.settings import Settings

# The rest of the server is imported inside the commands: with several workers the
# uvicorn supervisor process imports only this module, and stays small.


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    overrides = {
        k: v
        for k, v in (("host", getattr(args, "host", None)), ("port", getattr(args, "port", None)))
        if v
    }
    return msgspec.structs.replace(settings, **overrides) if overrides else settings


def base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::"} else settings.host  # noqa: S104
    return settings.public_url or f"http://{host}:{settings.port}"


async def _migrate(settings: Settings) -> None:
    from server.runtime import close_runtime, open_runtime

    rt = await open_runtime(settings)
    await close_runtime(rt)
    print(f"Database is up to date: {settings.resolved_database_url.split('@')[-1]}")


async def _demo(settings: Settings) -> None:
    from server.demo import seed_demo
    from server.runtime import close_runtime, open_runtime

    rt = await open_runtime(settings)
    try:
        demo = await seed_demo(rt, base_url(settings))
    finally:
        await close_runtime(rt)
    print(demo.qr_text)
    print(f"Homeward is ready at   {base_url(settings)}")
    print(f"Administrator          {demo.admin_email}")
    kept = settings.data_dir / "admin-password"
    print(f"Password               {demo.admin_password}   (kept in {kept})")
    print(f"ODK Collect            scan the QR code above (also saved as {demo.qr_png_path})")
    print(f"                       or enter the server URL {demo.collect_url}")


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise SystemExit("The passwords differ.")
        return first
    return sys.stdin.readline().rstrip("\n")


async def _user_create(settings: Settings, email: str, password: str) -> None:
    from server.runtime import close_runtime, open_runtime
    from server.services import accounts

    rt = await open_runtime(settings)
    try:
        async with rt.transaction() as db:
            actor, _ = await accounts.create_user(
                db, email=email, password=password, keep_digest=rt.settings.digest_auth
            )
        print(f"Created user {email} (actor {actor.id}).")
    finally:
        await close_runtime(rt)


async def _user_promote(settings: Settings, email: str) -> None:
    from server.runtime import close_runtime, open_runtime
    from server.services import accounts

    rt = await open_runtime(settings)
    try:
        async with rt.transaction() as db:
            found = await accounts.find_user(db, email)
            if found is None:
                raise SystemExit(f"No user with e-mail {email}.")
            await accounts.promote_to_admin(db, found[0].id, by=None)
        print(f"{email} is now a site administrator.")
    finally:
        await close_runtime(rt)


async def _purge(settings: Settings, days: int) -> None:
    from server.runtime import close_runtime, open_runtime
    from server.services.purge import purge_deleted

    rt = await open_runtime(settings)
    try:
        purged = await purge_deleted(rt, older_than=timedelta(days=days))
        print(
            f"Purged {purged.projects} projects, {purged.forms} forms and "
            f"{purged.submissions} submissions deleted {days} or more days ago; "
            f"{purged.files} files removed."
        )
    finally:
        await close_runtime(rt)


async def _retention(settings: Settings) -> None:
    from server.runtime import close_runtime, open_runtime
    from server.services.retention import expire_personal_answers

    rt = await open_runtime(settings)
    try:
        expired = await expire_personal_answers(rt)
        print(
            f"Pseudonymised the personal answers of {expired.submissions} submissions past "
            f"their project's retention; {expired.files} files removed."
        )
    finally:
        await close_runtime(rt)


async def _erase(settings: Settings, args: argparse.Namespace) -> None:
    from server.runtime import close_runtime, open_runtime
    from server.services import erasure, reviews
    from server.services.forms import find_form

    rt = await open_runtime(settings)
    try:
        if args.entity is not None:
            erased = await erasure.erase_entity(rt, args.project, args.entity, by=None)
        elif args.case is not None:
            erased = await erasure.erase_case(rt, args.project, args.case_field, args.case, by=None)
        else:
            async with rt.read() as db:
                form = await find_form(db, args.project, args.form)
                submission, _ = await reviews.find_submission(db, form, args.submission)
            erased = await erasure.erase_submissions(rt, args.project, [submission.id], by=None)
        print(
            f"Erased {erased.submissions} submissions and {erased.entities} entities; "
            f"{erased.files} files removed."
        )
    finally:
        await close_runtime(rt)


async def _render_rows(settings: Settings) -> None:
    from server.runtime import close_runtime, open_runtime
    from server.services.rendered_rows import render_stored_rows

    rt = await open_runtime(settings)
    try:
        rendered = await render_stored_rows(rt)
        print(f"Wrote {rendered.rows} OData rows of {rendered.forms} forms.")
    finally:
        await close_runtime(rt)


async def _check(settings: Settings, args: argparse.Namespace) -> None:
    """The data checks of POST .../cleaning-checks, printed as that JSON (for cron)."""
    import msgspec

    from exports.checks import CheckSettings
    from server.runtime import close_runtime, open_runtime
    from server.services.cleaning import run_form_checks
    from server.services.forms import find_form

    fields: dict[str, object] = {}
    if args.checks:
        fields["checks"] = [c.strip() for c in args.checks.split(",") if c.strip()]
    if args.since:
        fields["since"] = args.since
    try:
        wanted = msgspec.convert(fields, CheckSettings)
    except msgspec.ValidationError as error:
        raise SystemExit(f"homeward: {error}") from None
    rt = await open_runtime(settings)
    try:
        async with rt.read() as db:
            form = await find_form(db, args.project, args.form)
        report = await run_form_checks(rt, form, wanted)
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    finally:
        await close_runtime(rt)


async def _analysis(
    settings: Settings, rebuild: bool, form: str | None, project: int | None
) -> None:
    from sqlalchemy import select

    from server.db.models import Form
    from server.runtime import close_runtime, open_runtime
    from server.services import analysis

    rt = await open_runtime(settings)
    try:
        async with rt.read() as db:
            query = select(Form.id, Form.xml_form_id).where(Form.current_def_id.is_not(None))
            if form is not None:
                query = query.where(Form.xml_form_id == form)
            if project is not None:
                query = query.where(Form.project_id == project)
            forms = (await db.execute(query.order_by(Form.id))).all()
        for form_id, xml_form_id in forms:
            if rebuild:
                copied = await analysis.rebuild_copy(rt, form_id)
            else:
                copied = await analysis.extend_copy(rt, form_id)
            print(f"{xml_form_id}: {copied} submissions copied")
    finally:
        await close_runtime(rt)


# The values of server.services.exports.ExportFormat (a test keeps them equal); not
# imported from there, so that `homeward serve` stays light.
EXPORT_FORMATS = ("csv.zip", "csv", "xlsx", "parquet.zip", "geojson")


async def _export(settings: Settings, args: argparse.Namespace) -> None:
    """The same export as the API's, written to a file, with progress on a terminal.

    Whoever runs this command runs the server, so personal fields are kept unless
    --personal says otherwise.
    """
    from exports import ExportOptions
    from server.db.models import Project
    from server.problems import not_found
    from server.runtime import close_runtime, open_runtime, settle_heap
    from server.services import exports
    from server.services.cleaning import cleaned_export
    from server.services.forms import find_form

    where = exports.selection(args.filter, args.start, args.end, args.review_state)
    show = sys.stderr.isatty()
    rt = await open_runtime(settings)
    settle_heap()
    try:
        export_format = exports.ExportFormat(args.format)
        async with rt.read() as db:
            form = await find_form(db, args.project, args.form)
            project = await db.get(Project, args.project)
            if project is None:
                raise not_found()
            job = await exports.prepare_export(
                db,
                form,
                ExportOptions(
                    group_paths=not args.no_group_paths,
                    split_select_multiples=args.split_select_multiples,
                    labels=args.labels,
                    language=args.language,
                    personal=args.personal,
                    pseudonym_key=project.pseudonym_secret.encode(),
                    escape_formulas=args.formula_guard,
                    label_row=args.label_row,
                ),
                where,
                format=export_format,
                media=args.attachments,
                spool_dir=settings.data_dir / "tmp",
                deleted_fields=args.deleted_fields,
                geo_table=args.table,
                geo_field=args.geo_field,
            )
            if args.cleaned:
                job = await cleaned_export(db, form, job)
            first = await exports.fetch_page(db, job, None)
            total = await exports.count_selected(db, job) if show else 0
        progress = _Progress(total)
        if show:
            job = dataclasses.replace(job, on_page=progress.advance)
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / f"{form.xml_form_id}.{export_format.value}"
        partial = target.with_name(target.name + ".partial")
        shown = (lambda written: progress.show(target.name, written)) if show else None
        try:
            written = await exports.export_to_file(rt, job, first, partial, on_written=shown)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)  # a finished file only ever appears whole
        if show:
            print(file=sys.stderr)
        print(f"Wrote {target} ({written} bytes).")
    finally:
        await close_runtime(rt)


class _Progress:
    """A progress bar on stderr: submissions handed to the writer, out of all."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def advance(self, count: int) -> None:
        self.done += count

    def show(self, name: str, written: int) -> None:
        share = min(self.done / self.total, 1.0) if self.total else 1.0
        bar = "#" * round(share * self.WIDTH)
        print(
            f"\r{name} [{bar:<{self.WIDTH}}] {share:4.0%} {self.done:,}/{self.total:,} "
            f"submissions, {written / 1e6:.1f} MB",
            end="",
            file=sys.stderr,
        )


def _serve(settings: Settings, workers: int) -> None:
    import uvicorn

    from server.http_protocol import MAX_HEAD_BYTES, TimedH11Protocol

    # Slow or greedy clients: a deadline for each request head, a cap on its size,
    # idle keep-alive connections closed after 5 s, and at most 1,000 connections
    # and requests at once per process (more are answered 503 at once).
    limits: dict[str, object] = {
        "http": TimedH11Protocol,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_keep_alive": 5,
        "limit_concurrency": 1000,
    }
    if workers > 1:
        uvicorn.run(
            "server.cli:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="info",
            access_log=settings.access_log,
            **limits,  # type: ignore[arg-type]
        )
    else:
        from server.app import create_app

        _mask_credentials_in_access_log()
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=settings.access_log,
            **limits,  # type: ignore[arg-type]
        )


def app_from_env() -> object:
    """Factory for multi-worker uvicorn: each worker reads the same environment."""
    from server.app import create_app

    _mask_credentials_in_access_log()
    return create_app(Settings.from_env())


# App-user and draft tokens travel in the path, public-link tokens in ?st=: all are
# credentials, so an access log line never shows them.
_CREDENTIAL = re.compile(r"(/v1/(?:key|test)/)[^/?]+|([?&]st=)[^&]*")


class CredentialMask(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _CREDENTIAL.sub(lambda m: (m[1] or m[2]) + "***", arg)
                if isinstance(arg, str)
                else arg
                for arg in record.args
            )
        return True


def _mask_credentials_in_access_log() -> None:
    logging.getLogger("uvicorn.access").addFilter(CredentialMask())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeward", description="Homeward data-collection server."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="Serve HTTP (OpenRosa for Collect, the /v1 API).")
    serve.add_argument("--host", help="Interface to listen on (HOMEWARD_HOST, default 127.0.0.1).")
    serve.add_argument("--port", type=int, help="Port (HOMEWARD_PORT, default 8383).")
    serve.add_argument("--workers", type=int, default=1, help="Worker processes (default 1).")
    commands.add_parser("migrate", help="Create or upgrade the database tables.")
    demo = commands.add_parser(
        "demo", help="Seed the demo project and print URL, login and QR code."
    )
    demo.add_argument("--host", help="Host the printed URL uses.")
    demo.add_argument("--port", type=int, help="Port the printed URL uses.")
    create = commands.add_parser(
        "user-create", help="Create a web user; password from stdin or a prompt."
    )
    create.add_argument("--email", required=True)
    promote = commands.add_parser("user-promote", help="Make a user a site administrator.")
    promote.add_argument("--email", required=True)
    purge = commands.add_parser(
        "purge",
        help="Remove deleted projects, forms and submissions for good, with their files.",
        description=(
            "Projects, forms and submissions deleted through the API are kept so that "
            "they can be restored. This removes those deleted --days or more days ago "
            "(Central's default is 30), their versions, comments and files. Run it "
            "from cron to keep deleted personal data from staying on the server."
        ),
    )
    purge.add_argument(
        "--days", type=int, default=30, help="Age of deletion in days (0: everything deleted)."
    )
    commands.add_parser(
        "retention",
        help="Pseudonymise personal answers kept past their project's retention.",
        description=(
            "A project's retentionMonths (PATCH /v1/projects/{id}) is how long it keeps the "
            "answers its forms mark personal. This pseudonymises them in place in every "
            "submission received longer ago (XML, record, OData row; files of personal "
            "questions removed). The server runs it hourly; cron may run it too."
        ),
    )
    erase = commands.add_parser(
        "erase",
        help="Erase one returnee's submissions and their files for good.",
        description=(
            "Removes at once, without restore: every version, comment, stored OData row "
            "and attachment of the submissions found, and the files no other row needs. "
            "Name the returnee by a case question's answer (--case, --case-field), by their "
            "entity (--entity: it and every submission that made or changed it) or one "
            "submission (--form, --submission). Entities the submissions made or changed, "
            "cleaning-log entries, analysis copies and kept export files of the forms go too."
        ),
    )
    erase.add_argument("--entity", help="The returnee's entity uuid.")
    erase.add_argument("--project", type=int, required=True, help="Project id.")
    erase.add_argument("--case", help="The returnee's case id (the answer to --case-field).")
    erase.add_argument(
        "--case-field", default="case_id", help="Case question's name or path (default case_id)."
    )
    erase.add_argument("--form", help="Form id of the one submission to erase.")
    erase.add_argument("--submission", help="Its instance id.")
    commands.add_parser(
        "render-rows",
        help="Write the stored OData rows that do not match their form's current fields.",
        description=(
            "Ingest stores each submission's OData row for the fields of its form version, "
            "and the feed sends stored rows while they match the current version. After "
            "publishing a version that adds, removes or retypes fields (or after an "
            "upgrade), older rows are written from their answers on every read: correct, "
            "but slower. This writes them once for the current version. It can run while "
            "the server serves."
        ),
    )
    check = commands.add_parser(
        "check",
        help="Run a form's data checks and print the cleaning suggestions as JSON.",
        description=(
            "The checks of POST .../cleaning-checks (duplicates, outliers, constraints, "
            '"other, specify", short interviews) over the cleaned data. With --since, only '
            "submissions received since then are reported (still compared with all): run "
            "it from cron after new submissions arrive."
        ),
    )
    check.add_argument("--project", type=int, required=True, help="The project's id.")
    check.add_argument("--form", required=True, help="The form's xmlFormId.")
    check.add_argument("--since", help="Report submissions received at or after this ISO time.")
    check.add_argument(
        "--checks", help="Comma-separated: duplicate, outlier, constraint, other, duration."
    )
    for name, rebuild, text in (
        (
            "rebuild-analysis",
            True,
            "Write the analysis copy of every form (or of --form) again from the stored "
            "submissions. The copy is derived data: Parquet files that exports read and "
            "analysts may query; the server keeps it up to date by itself, so this is for "
            "after a restore, an upgrade or a damaged copy. It can run while the server serves.",
        ),
        (
            "update-analysis",
            False,
            "Add the submissions the analysis copy does not hold yet (those received more "
            "than a minute ago), as the server's background job does every few seconds.",
        ),
    ):
        command = commands.add_parser(name, help=text.split(". ")[0] + ".", description=text)
        command.set_defaults(rebuild=rebuild)
        command.add_argument("--project", type=int, help="Only this project's forms.")
        command.add_argument("--form", help="Only the form with this xmlFormId.")
    export = commands.add_parser(
        "export",
        help="Export a form's submissions to a file (CSV zip, CSV, XLSX, Parquet, GeoJSON).",
    )
    export.add_argument("--project", type=int, required=True, help="Project id.")
    export.add_argument("--form", required=True, help="The form's xmlFormId.")
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="csv.zip",
        help="csv.zip (every table, media/), csv (the main table alone), xlsx, "
        "parquet.zip (typed tables) or geojson (one table's locations).",
    )
    export.add_argument("--out", type=Path, default=Path("."), help="Folder to write into.")
    export.add_argument(
        "--no-attachments", dest="attachments", action="store_false", help="Leave media/ out."
    )
    export.add_argument(
        "--no-group-paths", action="store_true", help="Bare field names, as groupPaths=false."
    )
    export.add_argument(
        "--split-select-multiples", action="store_true", help="One 0/1 column per choice."
    )
    export.add_argument("--filter", help="OData $filter, as the API accepts it.")
    export.add_argument("--start", help="Only submissions received at or after this date/time.")
    export.add_argument("--end", help="Only submissions received before this date/time.")
    export.add_argument(
        "--review-state", help="Comma-separated review states (received, approved ..., null)."
    )
    export.add_argument("--labels", action="store_true", help="Choice labels, not values.")
    export.add_argument(
        "--deleted-fields",
        action="store_true",
        help="Also the questions only older versions of the form had.",
    )
    export.add_argument("--table", help="geojson: the table to map (as named in the CSV zip).")
    export.add_argument("--geo-field", help="geojson: the geo question (name or path).")
    export.add_argument(
        "--language", help='Language of the labels: "Shqip (sq)", its code "sq" or its name.'
    )
    export.add_argument(
        "--formula-guard",
        action="store_true",
        help="csv: quote cells a spreadsheet would run as a formula (changes those values).",
    )
    export.add_argument(
        "--cleaned",
        action="store_true",
        help="Apply the form's cleaning log and add the log beside the data.",
    )
    export.add_argument(
        "--label-row", action="store_true", help="xlsx: a second header row of question labels."
    )
    export.add_argument(
        "--personal",
        choices=("keep", "drop", "pseudonymise"),
        default="keep",
        help="What to do with fields the XLSForm marks personal (default keep).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    from exports import ExportError
    from server.problems import Problem

    args = build_parser().parse_args(argv)
    settings = _settings(args)
    # Everything this process writes (database, blobs, spools, exports, the QR code
    # that holds a token) is for its own user only.
    os.umask(0o077)
    try:
        _run(args, settings)
    except Problem as problem:
        raise SystemExit(f"homeward: {problem.message}") from None
    except ExportError as error:
        raise SystemExit(f"homeward: {error}") from None


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "serve":
        if args.workers > 1:
            # In a child process, so the supervisor never imports the database layer.
            subprocess.run([sys.executable, "-m", "server.cli", "migrate"], check=True)
        else:
            asyncio.run(_migrate(settings))
        _serve(settings, args.workers)
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "demo":
        asyncio.run(_demo(settings))
    elif args.command == "user-create":
        asyncio.run(_user_create(settings, args.email, _read_password("Password: ")))
    elif args.command == "user-promote":
        asyncio.run(_user_promote(settings, args.email))
    elif args.command == "export":
        asyncio.run(_export(settings, args))
    elif args.command == "retention":
        asyncio.run(_retention(settings))
    elif args.command == "erase":
        if args.case is None and args.entity is None and None in (args.form, args.submission):
            raise SystemExit("homeward: give --case, --entity, or --form and --submission.")
        asyncio.run(_erase(settings, args))
    elif args.command in ("rebuild-analysis", "update-analysis"):
        asyncio.run(_analysis(settings, args.rebuild, args.form, args.project))
    elif args.command == "render-rows":
        asyncio.run(_render_rows(settings))
    elif args.command == "check":
        asyncio.run(_check(settings, args))
    elif args.command == "purge":
        if args.days < 0:
            raise SystemExit("homeward: --days must be 0 or more.")
        asyncio.run(_purge(settings, args.days))


if __name__ == "__main__":
    main()
