"""Commands of the reporting cycle: open it, see where it stands, resend a link, sweep.

The sending commands (``cycle open``, ``cycle resend``, ``sweep``) do their work in this
process and return once the messages are sent (handy for cron and for checks); ``--dry-run``
shows what would go out and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from cli.common import actor_name, console, fail, load_settings, ready_engine
from models.clock import parse_instant, system_clock

if TYPE_CHECKING:
    import sqlalchemy as sa

    from config.settings import Settings
    from models.tables import DeliveryState

cycle_app = typer.Typer(
    help="The yearly reporting cycle: open it, see where it stands, move its deadline, "
    "resend a link, compile, approve and publish its report, read its audit log.",
    no_args_is_help=True,
)

NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Act as if it were this ISO 8601 date-time, for rehearsals, e.g. 2022-02-01 or "
        "2022-02-01T14:30. A date alone means 09:00; without an offset the time is read in "
        "REPORTCYCLE_TIMEZONE (Pacific/Auckland by default). Default: the real time.",
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be sent; write and send nothing.")
]
PlanOption = Annotated[
    str | None,
    typer.Option("--plan", help="The plan's slug (needed only when there are several)."),
]


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""
    app.add_typer(cycle_app, name="cycle")
    app.command("sweep")(sweep_command)


def _clock(now: str | None, settings: Settings) -> tuple[datetime, Callable[[], datetime]]:
    """The instant the command acts at, and the clock delivery retries use."""
    if now is None:
        at = system_clock()
        return at, system_clock
    try:
        at = parse_instant(now, settings.timezone)
    except ValueError as exc:
        fail(f"--now: {exc}")
    return at, lambda: at


def _check_mail(settings: Settings) -> None:
    """Stop before anything is written when REPORTCYCLE_MAIL_URL cannot be used to send:
    otherwise the command stores its messages, then fails with a traceback while sending them.
    The message names the variable, never its value (it may hold a password)."""
    if settings.mail_url is None:
        return
    from worker.notify import default_transport

    try:
        default_transport(settings)
    except ValueError as exc:
        fail(f"{exc}; nothing was done (reportcycle doctor checks the mail settings)")


def _deliver(engine: sa.Engine, ids: list[int], clock: Callable[[], datetime]) -> None:
    """Send the claimed messages in this process and say how it went; exit 2 on failures."""
    if not ids:
        return
    from models.delivery import deliver_now
    from models.tables import DeliveryState

    states: list[DeliveryState] = deliver_now(engine, ids, clock)
    sent = sum(1 for s in states if s == DeliveryState.SENT)
    retrying = sum(1 for s in states if s == DeliveryState.RETRYING)
    failed = sum(1 for s in states if s == DeliveryState.FAILED)
    console.print(f"delivered: {sent} sent, {retrying} to retry, {failed} failed")
    if retrying:
        console.print("  messages to retry stay queued; the worker (or the next sweep) retries")
    if failed:
        console.print("  failed messages are recorded and the coordinators told")
        raise typer.Exit(2)


@cycle_app.command("open")
def open_command(
    year: Annotated[int, typer.Argument(help="The reporting year, e.g. 2022.")],
    deadline: Annotated[
        str, typer.Option("--deadline", help="The date agencies must answer by (YYYY-MM-DD).")
    ],
    now: NowOption = None,
    dry_run: DryRunOption = False,
    plan: PlanOption = None,
) -> None:
    """Open the reporting cycle for YEAR and send each lead agency its update request.

    YEAR is the year the report covers, after the latest report in the database.

    Example: reportcycle cycle open 2022 --deadline 2022-10-28 --dry-run"""
    from models.cycles import CycleError, find_plan, open_cycle

    settings = load_settings()
    try:
        due = date.fromisoformat(deadline)
    except ValueError:
        fail(f"--deadline: {deadline!r} is not a date (YYYY-MM-DD)")
    at, clock = _clock(now, settings)
    _check_mail(settings)
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            found = find_plan(session, plan)
            opened = open_cycle(
                session, found, year, due, at, actor_name(), timezone=settings.timezone
            )
        except CycleError as exc:
            session.rollback()
            fail(str(exc))
        verb = "would open" if dry_run else "opened"
        console.print(
            f"{verb} the {year} cycle of {found.slug}: deadline {due.isoformat()}, "
            f"{len(opened.requests)} agencies, {len(opened.notification_ids)} messages"
        )
        labels = _recipients_by_agency(session, opened.notification_ids)
        for item in opened.requests:
            if item.has_contacts:
                to = ", ".join(labels.get(item.agency.id or 0, []))
                via = f" (through {item.routed_via.acronym})" if item.routed_via else ""
                console.print(f"  {item.agency.acronym:<10} update request to {to}{via}")
            else:
                console.print(
                    f"  {item.agency.acronym:<10} no contacts: request left pending; add one "
                    f"with reportcycle agency contact add {item.agency.acronym} EMAIL and the "
                    "next sweep sends it"
                )
        if dry_run:
            session.rollback()
            console.print("dry run: nothing written, nothing sent")
            return
        session.commit()
    _deliver(engine, opened.notification_ids, clock)


def _recipients_by_agency(session: Session, ids: list[int]) -> dict[int, list[str]]:
    from sqlmodel import col, select

    from models.tables import Notification

    found: dict[int, list[str]] = {}
    rows = session.exec(
        select(Notification).where(col(Notification.id).in_(ids)).order_by(col(Notification.id))
    )
    for notification in rows:
        found.setdefault(notification.agency_id or 0, []).append(notification.recipient)
    return found


@cycle_app.command("status")
def status_command(
    year: Annotated[int, typer.Argument(help="The reporting year.")],
    plan: PlanOption = None,
) -> None:
    """Show each agency's update request in YEAR: state, reminders, milestones due, slipped.

    Example: reportcycle cycle status 2022"""
    from models.cycles import CycleError, cycle_status, find_cycle, find_plan

    engine = ready_engine()
    with Session(engine) as session:
        try:
            cycle = find_cycle(session, find_plan(session, plan), year)
        except CycleError as exc:
            fail(str(exc))
        rows = cycle_status(session, cycle)
        table = Table(
            title=f"{year} cycle: deadline {cycle.deadline.isoformat()} ({cycle.state.value})"
        )
        table.add_column("agency")
        table.add_column("request")
        table.add_column("reminders sent", justify="right")
        table.add_column(f"milestones due ({year})", justify="right")
        table.add_column("slipped", justify="right")
        # Only when some agency was given a deadline of its own.
        extensions = any(row.extended for row in rows)
        if extensions:
            table.add_column("extended to")
        for row in rows:
            cells = [
                row.agency.acronym,
                row.state_label,
                str(row.reminders_sent),
                str(row.milestones_due),
                str(row.slipped),
            ]
            if extensions:
                cells.append(row.deadline.isoformat() if row.extended else "")
            table.add_row(*cells)
        console.print(table)


@cycle_app.command("resend")
def resend_command(
    year: Annotated[int, typer.Argument(help="The reporting year.")],
    agency: Annotated[str, typer.Argument(help="The agency's acronym, e.g. MBIE.")],
    now: NowOption = None,
    plan: PlanOption = None,
) -> None:
    """Re-issue AGENCY's link: every earlier link stops working, each contact gets a new one.

    Example: reportcycle cycle resend 2022 NZP"""
    from models.cycles import CycleError, find_cycle, find_plan, resend_link

    settings = load_settings()
    at, clock = _clock(now, settings)
    _check_mail(settings)
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            cycle = find_cycle(session, find_plan(session, plan), year)
            done = resend_link(session, cycle, agency, at, actor_name())
        except CycleError as exc:
            session.rollback()
            fail(str(exc))
        session.commit()
    console.print(
        f"{done.agency.acronym}: {done.revoked} earlier link(s) revoked; "
        f"a new link goes out in {len(done.notification_ids)} message(s)"
    )
    _deliver(engine, done.notification_ids, clock)


@cycle_app.command("deadline")
def deadline_command(
    year: Annotated[int, typer.Argument(help="The reporting year.")],
    deadline: Annotated[str, typer.Argument(help="The new deadline (YYYY-MM-DD).")],
    agency: Annotated[
        str | None,
        typer.Option(
            "--agency",
            help="Give this agency alone a later deadline (an extension); the cycle's "
            "deadline again ends its extension.",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why: shown in the message and the audit log.")
    ] = None,
    now: NowOption = None,
    plan: PlanOption = None,
) -> None:
    """Move YEAR's deadline, or extend one agency's; tell the agencies still to answer.

    Example: reportcycle cycle deadline 2022 2022-11-11 --agency NZP --reason 'Staff away'"""
    from models.cycles import CycleError, change_deadline, find_cycle, find_plan

    try:
        new = date.fromisoformat(deadline)
    except ValueError:
        fail(f"DEADLINE: {deadline!r} is not a date (YYYY-MM-DD)")
    settings = load_settings()
    at, clock = _clock(now, settings)
    _check_mail(settings)
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            cycle = find_cycle(session, find_plan(session, plan), year)
            change = change_deadline(
                session,
                cycle,
                new,
                at,
                actor_name(),
                agency_name=agency,
                reason=reason,
                timezone=settings.timezone,
            )
        except CycleError as exc:
            session.rollback()
            fail(str(exc))
        session.commit()
    if change.agency is None:
        console.print(f"The {year} deadline is now {new.isoformat()}.")
    for moved in change.moved:
        console.print(
            f"  {moved.agency.acronym}: {moved.previous.isoformat()} → "
            f"{moved.deadline.isoformat()}, told in {len(moved.notification_ids)} message(s)"
        )
    if change.agency is None and not change.moved:
        console.print("  no agency still to answer has a different deadline now: nobody told")
    _deliver(engine, change.notification_ids, clock)


def sweep_command(now: NowOption = None, dry_run: DryRunOption = False) -> None:
    """Send what is due now: milestone and deadline reminders, escalations, slip notices.

    Safe to run as often as you like (each message is sent once), e.g. from cron.

    Example: reportcycle sweep --dry-run"""
    from sqlmodel import select

    from models.sweep import sweep
    from models.tables import Agency

    settings = load_settings()
    at, clock = _clock(now, settings)
    _check_mail(settings)
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        result = sweep(session, at, settings)
        if result.deferred:
            session.rollback()
            console.print(f"nothing sent now: {result.deferred}")
            return
        verb = "would send" if dry_run else "claimed"
        late = f"{result.update_requests} update request(s), " if result.update_requests else ""
        console.print(
            f"{verb} {result.messages} message(s): {late}{result.milestone_reminders} milestone "
            f"reminder(s), {result.deadline_reminders} deadline reminder(s), "
            f"{result.escalations} escalation(s), "
            f"{len(result.slipped_milestone_ids)} milestone(s) newly slipped"
        )
        acronyms = {a.id: a.acronym for a in session.exec(select(Agency))}
        for digest in result.digests:
            parts = ["update request"] if digest.kind == "update_request" else []
            if digest.milestone_reminders:
                parts.append(f"{digest.milestone_reminders} milestone(s) due")
            if digest.deadline_days is not None:
                parts.append(f"deadline in {digest.deadline_days} day(s)")
            if digest.escalations:
                parts.append(f"{digest.escalations} overdue")
            if digest.slipped:
                parts.append(f"{digest.slipped} slipped")
            # The agency too: a parent's contact may read for its business units.
            about = f" for {acronyms[digest.agency]}" if digest.agency in acronyms else ""
            console.print(f"  {digest.kind:<10} to {digest.recipient}{about}: {', '.join(parts)}")
        if dry_run:
            session.rollback()
            console.print("dry run: nothing written, nothing sent")
            return
        session.commit()
        resumed = _resumable(session, at, settings, set(result.notification_ids))
    if resumed:
        console.print(f"also retrying {len(resumed)} earlier message(s) not yet delivered")
    _deliver(engine, [*result.notification_ids, *resumed], clock)


def _resumable(session: Session, at: datetime, settings: Settings, claimed: set[int]) -> list[int]:
    """Rows an earlier run left to retry (or lost): with no worker running, cron's sweep is
    what retries them."""
    from models.delivery import DeliveryPolicy, resumable_ids
    from worker.tasks import lost_after

    found = resumable_ids(
        session, at, policy=DeliveryPolicy.from_settings(settings), lost_after=lost_after(settings)
    )
    return [notification_id for notification_id in found if notification_id not in claimed]
