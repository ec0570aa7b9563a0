"""Commands of the review: coordinator accounts, compiling the draft, approving, publishing,
and the audit log. They join the ``cycle`` group of ``cli.cycle_commands``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlmodel import Session

from cli.common import actor_name, console, fail, load_settings, ready_engine
from cli.cycle_commands import NowOption, PlanOption, _check_mail, _clock, _deliver, cycle_app

if TYPE_CHECKING:
    from models.tables import Cycle, ReportVersion

coordinator_app = typer.Typer(help="Coordinator accounts for the dashboard.", no_args_is_help=True)

ByOption = Annotated[
    str,
    typer.Option("--by", help="The coordinator's email (recorded as who did it)."),
]


def register(app: typer.Typer) -> None:
    """Attach this module's commands: ``coordinator add`` and ``cycle compile|approve|
    publish|audit``."""
    app.add_typer(coordinator_app, name="coordinator")
    cycle_app.command("compile")(compile_command)
    cycle_app.command("approve")(approve_command)
    cycle_app.command("publish")(publish_command)
    cycle_app.command("audit")(audit_command)


def _cycle(session: Session, year: int, plan: str | None) -> Cycle:
    from models.cycles import CycleError, find_cycle, find_plan

    try:
        return find_cycle(session, find_plan(session, plan), year)
    except CycleError as exc:
        fail(str(exc))


@coordinator_app.command("add")
def coordinator_add_command(
    email: Annotated[str, typer.Argument(help="The coordinator's email (their sign-in name).")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input (one line)."),
    ] = False,
) -> None:
    """Add a coordinator who signs in to the dashboard, or set a new password for one.

    Example: reportcycle coordinator add you@example.org

    For an email that already has an account this sets a new password, and every session
    signed in with the old one ends; the command says which it did."""
    import getpass

    from models.accounts import (
        AccountError,
        account_email,
        add_account,
        find_account,
        password_problem,
    )
    from models.clock import system_clock

    try:
        address = account_email(email)
    except AccountError as exc:
        fail(str(exc))
    engine = ready_engine()
    with Session(engine) as session:
        existing = find_account(session, address) is not None
    if existing and not password_stdin:
        # Said before the prompt, so a mistyped "add" of someone else can still be stopped.
        console.print(
            f"{address} is already a coordinator: this sets a new password and ends their "
            "signed-in sessions (Ctrl-C to stop)"
        )
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {address}: ")
        if password_problem(password) is None and password != getpass.getpass("Again: "):
            fail("the two passwords differ; nothing changed")
    problem = password_problem(password)
    if problem:
        fail(problem)
    with Session(engine, expire_on_commit=False) as session:
        account = add_account(session, address, password, system_clock(), actor=actor_name())
        session.commit()
    if existing:
        console.print(
            f"coordinator {account.email}: new password set; sessions signed in with the old "
            "one have ended"
        )
    else:
        console.print(f"added coordinator {account.email}: can sign in at /dashboard")


@cycle_app.command("compile")
def compile_command(
    year: Annotated[int, typer.Argument(help="The reporting year.")],
    now: NowOption = None,
    plan: PlanOption = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who compiles (default: this user).")
    ] = None,
) -> None:
    """Compile the agencies' submitted answers into YEAR's report draft (a new version).

    Example: reportcycle cycle compile 2022"""
    from models import drafts

    settings = load_settings()
    at, _clock_fn = _clock(now, settings)
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        cycle = _cycle(session, year, plan)
        result = drafts.compile_cycle_result(session, cycle, at, by or actor_name())
        notes = drafts.review_notes(session, cycle)
        session.commit()
        version = result.version
        if result.created:
            console.print(f"compiled the {year} report: draft version {version.number}")
        else:
            console.print(
                f"the {year} report is unchanged: version {version.number} "
                f"({version.state.value}) already holds it"
            )
        console.print(f"  checksum {version.checksum}")
        console.print(
            f"  answered: {', '.join(notes.answered) or 'nobody yet'}; "
            f"not answered: {', '.join(notes.not_answered) or 'none'}"
        )
        console.print(
            f"  {notes.carried_forward} entries carried forward (not updated), "
            f"{notes.offered} completed milestones offered as achievements"
        )
        for dropped in notes.dropped:
            console.print(
                f"  no longer planned ({dropped.agency}): {dropped.text}"
                + (f" — {dropped.reason}" if dropped.reason else "")
            )
        if result.stale_edits:
            console.print(
                f"  {len(result.stale_edits)} coordinator edit(s) no longer apply: the agency "
                "changed that text"
            )
        console.print(
            f"  see it with: reportcycle compile --year {year} --format html "
            f"-o report-{year}-v{version.number}.html (or on the dashboard)"
        )


def _version_or_latest(session: Session, cycle: Cycle, number: int | None) -> ReportVersion:
    from models import drafts

    if number is not None:
        try:
            return drafts.find_version(session, cycle, number)
        except drafts.DraftError as exc:
            fail(str(exc))
    latest = drafts.latest_version(session, cycle)
    if latest is None:
        fail(f"the {cycle.year} report has no version yet: reportcycle cycle compile {cycle.year}")
    return latest


VersionOption = Annotated[
    int | None, typer.Option("--version", help="The version number (default: the latest).")
]


@cycle_app.command("approve")
def approve_command(
    year: Annotated[int, typer.Argument(help="The reporting year.")],
    by: ByOption,
    version: VersionOption = None,
    now: NowOption = None,
    plan: PlanOption = None,
) -> None:
    """Approve YEAR's latest draft version: the answers become final.

    Example: reportcycle cycle approve 2022 --by you@example.org"""
    from models.accounts import find_account
    from models.publishing import ReviewError, approve

    settings = load_settings()
    at, _clock_fn = _clock(now, settings)
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        if find_account(session, by) is None:
            fail(f"{by} is not a coordinator (reportcycle coordinator add {by})")
        cycle = _cycle(session, year, plan)
        chosen = _version_or_latest(session, cycle, version)
        try:
            approved = approve(session, cycle, chosen, at, by.strip().lower())
        except ReviewError as exc:
            session.rollback()
            fail(str(exc))
        session.commit()
        console.print(
            f"approved version {approved.number} of the {year} report "
            f"(checksum {approved.checksum})"
        )


@cycle_app.command("publish")
def publish_command(
    year: Annotated[int, typer.Argument(help="The reporting year.")],
    by: ByOption,
    out: Annotated[Path, typer.Option("--out", help="The folder to write the published files to.")],
    version: VersionOption = None,
    now: NowOption = None,
    plan: PlanOption = None,
) -> None:
    """Publish YEAR's approved version: write its files, close the cycle, tell everyone.

    Example: reportcycle cycle publish 2022 --by you@example.org --out site/reports"""
    from models.accounts import find_account
    from models.publishing import ReviewError, publish

    settings = load_settings()
    at, clock = _clock(now, settings)
    _check_mail(settings)
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: a file, not a folder; give the folder to write the report to")
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        if find_account(session, by) is None:
            fail(f"{by} is not a coordinator (reportcycle coordinator add {by})")
        cycle = _cycle(session, year, plan)
        chosen = _version_or_latest(session, cycle, version)
        try:
            done = publish(
                session, cycle, chosen, at, by.strip().lower(), out, base_url=settings.base_url
            )
        except ReviewError as exc:
            session.rollback()
            fail(str(exc))
        except OSError as exc:
            session.rollback()
            # The database is untouched (rolled back); files already written are replaced by
            # the next attempt.
            fail(
                f"--out {out}: cannot write the published files ({exc.strerror or exc}); "
                "nothing was published"
            )
        session.commit()
        console.print(f"published version {done.version.number} of the {year} report to {out}")
        for file in done.files:
            console.print(f"  {file.name:<40} {file.size:>9} bytes  sha256 {file.sha256[:16]}…")
        console.print(
            f"  the {year} cycle is closed; {done.links_revoked} agency link(s) revoked; "
            f"{len(done.notification_ids)} message(s) to send"
        )
        ids = done.notification_ids
    _deliver(engine, ids, clock)


@cycle_app.command("audit")
def audit_command(
    year: Annotated[int, typer.Argument(help="The reporting year.")],
    as_csv: Annotated[
        bool,
        typer.Option("--csv", help="Write the log as CSV to stdout (times in UTC, ISO 8601)."),
    ] = False,
    plan: PlanOption = None,
) -> None:
    """Show YEAR's audit log: every state change, who and when (in REPORTCYCLE_TIMEZONE,
    as on the dashboard).

    Example: reportcycle cycle audit 2022 --csv > audit-2022.csv"""
    import json
    from zoneinfo import ZoneInfo

    from models.clock import as_aware
    from models.publishing import agencies_by_id, cycle_log, export_audit

    settings = load_settings()
    engine = ready_engine()
    with Session(engine) as session:
        cycle = _cycle(session, year, plan)
        if as_csv:
            sys.stdout.write(export_audit(session, cycle))
            return
        events = cycle_log(session, cycle)
        agencies = agencies_by_id(session, {e.agency_id for e in events if e.agency_id})
    zone = ZoneInfo(settings.timezone)
    rows = []
    for event in events:
        agency = agencies.get(event.agency_id or 0)
        rows.append(
            (
                # The coordinators' time zone, as the dashboard shows it (NZDT/NZST named).
                as_aware(event.at).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
                event.action,
                event.actor,
                agency.acronym if agency else "",
                event.subject or "",
                json.dumps(event.detail, ensure_ascii=False, sort_keys=True)
                if event.detail
                else "",
            )
        )
    console.print(f"{year} cycle: audit log (times in {settings.timezone})", markup=False)
    # Columns aligned on their widest value; the detail, last, runs as long as it needs.
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(5)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        console.print("  ".join([*cells, row[5]]).rstrip(), markup=False)
