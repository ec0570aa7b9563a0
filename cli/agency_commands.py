"""Commands about agencies and their contacts (who receives update requests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text
from sqlmodel import Session

from cli.common import actor_name, console, fail, load_settings, ready_engine
from cli.plan_commands import read_report_file
from models.clock import system_clock

agency_app = typer.Typer(help="Agencies and their contacts.", no_args_is_help=True)
contact_app = typer.Typer(help="Add a contact to an agency.", no_args_is_help=True)
contacts_app = typer.Typer(help="Import contacts in bulk.", no_args_is_help=True)
agency_app.add_typer(contact_app, name="contact")
agency_app.add_typer(contacts_app, name="contacts")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""
    app.add_typer(agency_app, name="agency")


@agency_app.command("list")
def list_command() -> None:
    """List the agencies: acronym, name, parent, contacts and milestones led."""
    from models.contacts import agency_rows

    engine = ready_engine()
    with Session(engine) as session:
        rows = agency_rows(session)
    if not rows:
        console.print("no agencies yet: import a report first (reportcycle import)")
        return
    table = Table()
    table.add_column("acronym")
    table.add_column("name")
    table.add_column("parent")
    table.add_column("contacts", justify="right")
    table.add_column("milestones led", justify="right")
    for row in rows:
        contacts = str(row.contacts)
        if row.coordinators:
            contacts += f" ({row.coordinators} coordinator{'s' if row.coordinators > 1 else ''})"
        table.add_row(
            row.agency.acronym,
            row.agency.full_name,
            row.parent or "",
            contacts,
            str(row.milestones_led),
        )
    console.print(table)


@agency_app.command("add")
def add_agency_command(
    acronym: Annotated[str, typer.Argument(help="As reports write it, e.g. NZCS.")],
    name: Annotated[str, typer.Argument(help="The full name, e.g. 'New Zealand Customs Service'.")],
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent",
            help="The agency it is part of (a business unit: INZ is part of MBIE). Its "
            "messages go to the parent's contacts while it has none of its own.",
        ),
    ] = None,
    alias: Annotated[
        list[str] | None,
        typer.Option("--alias", help="Another name it goes by (repeatable), e.g. Customs."),
    ] = None,
) -> None:
    """Add an agency that the imported report does not name yet.

    Example: reportcycle agency add NZCS 'New Zealand Customs Service' --alias Customs"""
    from models.contacts import ContactError, add_agency

    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            agency = add_agency(
                session,
                acronym,
                name,
                system_clock(),
                actor_name(),
                parent=parent,
                aliases=alias or (),
            )
        except ContactError as exc:
            session.rollback()
            fail(str(exc))
        session.commit()
        above = session.get(type(agency), agency.parent_id) if agency.parent_id else None
    part = f", part of {above.acronym}" if above is not None else ""
    console.print(
        Text(
            f"added {agency.acronym} ({agency.full_name}{part}); give it a contact with "
            f"reportcycle agency contact add {agency.acronym} EMAIL"
        )
    )


@contact_app.command("add")
def add_command(
    agency: Annotated[str, typer.Argument(help="The agency's acronym, e.g. MBIE.")],
    email: Annotated[str, typer.Argument(help="The contact's email address.")],
    name: Annotated[str | None, typer.Option("--name", help="The contact's name.")] = None,
    notify_url: Annotated[
        str | None,
        typer.Option(
            "--notify-url",
            help="An extra Apprise URL (Teams, Slack …) that gets the same messages. It may "
            "hold credentials: it is stored, never printed. It must reach a public address "
            "unless REPORTCYCLE_NOTIFY_PRIVATE_HOSTS=true.",
        ),
    ] = None,
    coordinator: Annotated[
        bool,
        typer.Option(
            "--coordinator",
            help="A coordinator: gets escalations, slip notices and delivery failures "
            "instead of the agency's update requests.",
        ),
    ] = False,
) -> None:
    """Add a contact to AGENCY: they receive its update request, link and reminders.

    Example: reportcycle agency contact add MBIE ana@mbie.govt.nz --name 'Ana Smith'"""
    from models.contacts import ContactError, add_contact, find_agency

    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            found = find_agency(session, agency)
            contact = add_contact(
                session,
                found,
                email,
                system_clock(),
                name=name,
                notify_url=notify_url,
                coordinator=coordinator,
                actor=actor_name(),
                allow_private_hosts=load_settings().notify_private_hosts,
            )
        except ContactError as exc:
            session.rollback()
            fail(str(exc))
        session.commit()
    role = "coordinator" if contact.is_coordinator else "contact"
    extra = " (with a notify URL)" if contact.notify_url else ""
    console.print(f"added {contact.email} as a {role} of {found.acronym}{extra}")


@contacts_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="A CSV file with the header agency,email,name,notify_url,coordinator "
            "(coordinator: yes or no). All or nothing."
        ),
    ],
) -> None:
    """Add contacts from a CSV file (existing ones are updated); nothing is written on error.

    Every problem is listed with its line and field. A file looks like:

    agency,email,name,notify_url,coordinator

    MBIE,ana@mbie.govt.nz,Ana Smith,,no

    For a contact that exists, an empty name or notify_url keeps the stored one.

    To drop a notify URL, remove the contact and add it again.

    Example: reportcycle agency contacts import contacts.csv"""
    from models.contacts import ContactError, import_contacts

    # Missing, a folder, unreadable, not UTF-8 (naming the line) or empty: one clear line.
    text = read_report_file(file)
    engine = ready_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            result = import_contacts(
                session,
                text,
                system_clock(),
                actor_name(),
                allow_private_hosts=load_settings().notify_private_hosts,
            )
        except ContactError as exc:
            session.rollback()
            fail(f"{file}: {exc}")
        session.commit()
    console.print(
        f"{file}: {len(result.added)} contact(s) added, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged"
    )
