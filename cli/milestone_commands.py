"""Commands about milestones: list them with their leads, and correct a lead."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text
from sqlmodel import Session

from cli.common import actor_name, console, fail, ready_engine
from cli.cycle_commands import PlanOption
from models.clock import system_clock

milestone_app = typer.Typer(help="The plan's milestones and who leads them.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""
    app.add_typer(milestone_app, name="milestone")


@milestone_app.command("list")
def list_command(
    agency: Annotated[
        str | None, typer.Option("--agency", help="Only the milestones this agency leads.")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Only those whose text contains this.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only those in this status: planned, on_track, delayed, completed, dropped, "
            "or slipped (its period ended and it is not completed).",
        ),
    ] = None,
    plan: PlanOption = None,
) -> None:
    """List the plan's milestones: number, objective, due period, lead, status and text.

    Example: reportcycle milestone list --agency MBIE --status delayed"""
    from models.contacts import ContactError, find_agency
    from models.cycles import CycleError, find_plan
    from models.milestone_leads import LeadError, list_milestones

    engine = ready_engine()
    with Session(engine) as session:
        try:
            found = find_plan(session, plan)
            lead = find_agency(session, agency) if agency else None
        except (CycleError, ContactError) as exc:
            fail(str(exc))
        try:
            rows = list_milestones(session, found, agency=lead, search=search, status=status)
        except LeadError as exc:
            fail(str(exc))
    if not rows:
        console.print("no milestones match")
        return
    # One line per milestone under its objective (not a table that wraps): easy to read,
    # to grep and to pick a number from, whatever the length of the texts.
    objective = None
    for row in rows:
        if row.objective != objective:
            objective = row.objective
            console.print(Text(objective, style="bold"))
        # Text() so that brackets in a milestone are shown, not read as console markup.
        console.print(
            Text(
                f"  {row.id:>6}  {row.due or 'undated':<18} {row.lead or '-':<6} "
                f"{row.label:<9} {row.text}"
            )
        )
    console.print(f"{len(rows)} milestone(s)")


@milestone_app.command("lead")
def lead_command(
    number: Annotated[int, typer.Argument(help="The milestone's number (milestone list).")],
    agency: Annotated[str, typer.Argument(help="The agency that leads it, e.g. INZ.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
) -> None:
    """Correct who leads a milestone (the importer guesses it from the milestone's text).

    Example: reportcycle milestone lead 14 NZP --reason 'Police run the liaison officers'"""
    from models.contacts import ContactError
    from models.milestone_leads import LeadError, change_lead

    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            change = change_lead(
                session, number, agency, system_clock(), actor_name(), reason=reason
            )
        except (LeadError, ContactError) as exc:
            session.rollback()
            fail(str(exc))
        session.commit()
    was = change.previous.acronym if change.previous is not None else "nobody"
    console.print(Text(f"milestone {number}: {change.lead.acronym} leads it now (was {was})"))
    if change.added_request is not None and change.cycle is not None:
        console.print(
            f"{change.lead.acronym} had no update request in the open {change.cycle.year} "
            "cycle: one was added, and the next sweep (reportcycle sweep) sends it"
        )
