"""Agencies' contacts: the people who receive update requests, and the coordinators.

An email address is checked for shape (no guessing, no DNS). A contact's extra notify URL is
an Apprise URL (Teams, Slack …) that may hold credentials: it is checked by asking Apprise to
read it, and it is never printed back, logged or put in an error message beyond its scheme.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import audit
from models.notify_targets import SETTING as PRIVATE_HOSTS_SETTING
from models.notify_targets import private_host_in_url
from models.tables import Agency, AnnualReport, Contact, Milestone, ObjectiveReport
from models.tables import ObjectiveReportAgency as ActiveAgency


class ContactError(ValueError):
    """Bad contact input; the message names what and where."""


# Deliberately plain: one @, a dot-atom-ish local part, a domain of letters, digits and
# hyphens with at least one dot. Quoted local parts and IP-literal domains are refused.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def normalise_email(text: str) -> str:
    """The address with its domain in lower case; ContactError when it is not an address."""
    address = text.strip()
    if not address:
        raise ContactError("the email address is empty")
    if len(address) > 254:
        raise ContactError(f"the email address {address[:40]!r}… is longer than 254 characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ContactError(f"{address!r} is not an email address (it needs one @)")
    if len(local) > 64 or not _LOCAL.fullmatch(local):
        raise ContactError(f"{address!r} is not an email address (the part before @)")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ContactError(f"{address!r} is not an email address (the domain {domain!r})")
    if labels[-1].isdigit():
        raise ContactError(f"{address!r} is not an email address (the domain {domain!r})")
    return f"{local}@{domain.lower()}"


MAX_CONTACT_NAME = 200
MAX_NOTIFY_URL = 2000
# Line breaks and other control characters: a name goes into the To: header of every mail.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def contact_name(text: str | None) -> str | None:
    """The contact's name, trimmed (None when blank); ContactError when it is too long or
    holds a line break or another control character."""
    name = (text or "").strip()
    if _CONTROL.search(name):
        raise ContactError("the name holds a line break or another control character")
    if len(name) > MAX_CONTACT_NAME:
        raise ContactError(f"the name is longer than {MAX_CONTACT_NAME} characters")
    return name or None


def url_scheme(url: str) -> str:
    """What may be shown of a notify URL: its scheme only."""
    scheme, sep, _rest = url.partition("://")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", scheme):
        return f"{scheme.lower()}://…"
    return "not a URL"


@contextmanager
def _apprise_quiet() -> Iterator[None]:
    # Apprise logs an unparseable URL in full, credentials included: silence it while we ask.
    logger = logging.getLogger("apprise")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


# Schemes that Apprise reads but that are no extra channel for a person: mail goes through
# REPORTCYCLE_MAIL_URL, and "outbox" is our own local writer.
_REFUSED_SCHEMES = {"mailto", "mailtos", "outbox"}


def check_notify_url(url: str, *, allow_private_hosts: bool = False) -> str:
    """The URL, stripped, when Apprise can read it and (unless ``allow_private_hosts``) its
    host is not given as a private or local address; ContactError naming the scheme (and
    such a host), never the rest of the URL, which may hold credentials."""
    value = url.strip()
    if not value:
        raise ContactError("the notify URL is empty")
    shown = url_scheme(value)
    if len(value) > MAX_NOTIFY_URL:
        raise ContactError(f"the notify URL ({shown}) is longer than {MAX_NOTIFY_URL} characters")
    scheme = value.partition("://")[0].lower()
    if scheme in _REFUSED_SCHEMES:
        raise ContactError(
            f"the notify URL ({shown}) is an email URL; give the address as the contact's "
            "email instead"
        )
    import apprise

    with _apprise_quiet():
        plugin = apprise.Apprise.instantiate(value, suppress_exceptions=True)
    if plugin is None:
        raise ContactError(
            f"the notify URL ({shown}) is not an Apprise URL that Apprise can read "
            "(see https://github.com/caronc/apprise/wiki for the URL of each service)"
        )
    if not allow_private_hosts:
        private = private_host_in_url(value)
        if private is not None:
            raise ContactError(
                f"the notify URL ({shown}) points at {private}, a private or local address: "
                f"notify URLs reach public addresses only unless {PRIVATE_HOSTS_SETTING}=true"
            )
    return value


def find_agency(session: Session, name: str) -> Agency:
    """The agency by acronym, full name or alias, case-insensitively; ContactError listing
    the known."""
    wanted = " ".join(name.split()).casefold()
    agencies = session.exec(select(Agency).order_by(col(Agency.acronym))).all()
    for agency in agencies:
        if agency.acronym.casefold() == wanted:
            return agency
    for agency in agencies:
        names = [agency.full_name, *agency.aliases]
        if any(" ".join(n.split()).casefold() == wanted for n in names):
            return agency
    known = ", ".join(a.acronym for a in agencies) or "none yet: import a report first"
    raise ContactError(f"no agency {name.strip()!r} (known: {known})")


# The report format's acronym: letters, with "&" or "." inside (MBIE, MoJ, NZ.P).
_ACRONYM = re.compile(r"[A-Za-z][A-Za-z&.]*")
MAX_AGENCY_NAME = 200
AGENCY_ADDED = "agency.added"
CONTACT_ADDED = "contact.added"
CONTACT_REMOVED = "contact.removed"
CONTACT_UPDATED = "contact.updated"


def add_agency(
    session: Session,
    acronym: str,
    full_name: str,
    now: datetime,
    actor: str,
    *,
    parent: str | None = None,
    aliases: Sequence[str] = (),
) -> Agency:
    """A new agency (one that joins the plan after the report was imported, say Customs);
    ContactError naming the field when the acronym, a name or the parent is wrong."""
    acronym, full_name = acronym.strip(), " ".join(full_name.split())
    if not _ACRONYM.fullmatch(acronym) or len(acronym) > 32:
        raise ContactError(
            f"acronym {acronym!r}: letters only (with & or . inside), at most 32, as reports "
            "write them, e.g. NZCS"
        )
    if not full_name or len(full_name) > MAX_AGENCY_NAME:
        raise ContactError(f"name: give the agency's full name, at most {MAX_AGENCY_NAME} letters")
    names = [acronym, full_name, *(" ".join(a.split()) for a in aliases if a.strip())]
    taken: dict[str, Agency] = {}
    for agency in session.exec(select(Agency)).all():
        for known in (agency.acronym, agency.full_name, *agency.aliases):
            taken[known.casefold()] = agency
    for name in names:
        clash = taken.get(name.casefold())
        if clash is not None:
            raise ContactError(f"{name!r} already names {clash.acronym} ({clash.full_name})")
    try:
        parent_row = find_agency(session, parent) if parent else None
    except ContactError as exc:
        raise ContactError(f"parent: {exc}") from None
    agency = Agency(
        acronym=acronym,
        full_name=full_name,
        aliases=list(dict.fromkeys(names[2:])),
        parent_id=parent_row.id if parent_row is not None else None,
    )
    session.add(agency)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AGENCY_ADDED,
        at=now,
        agency_id=agency.id,
        subject=f"agency:{agency.id}",
        detail={
            "acronym": acronym,
            "name": full_name,
            "parent": parent_row.acronym if parent_row else None,
        },
    )
    return agency


def add_contact(
    session: Session,
    agency: Agency,
    email: str,
    now: datetime,
    *,
    name: str | None = None,
    notify_url: str | None = None,
    coordinator: bool = False,
    actor: str | None = None,
    allow_private_hosts: bool = False,
) -> Contact:
    """Add a contact to ``agency`` (or bring back one removed earlier); ContactError when it
    is bad or already there. With ``actor``, the change goes to the audit log."""
    address = normalise_email(email)
    name = contact_name(name)
    url = (
        check_notify_url(notify_url, allow_private_hosts=allow_private_hosts)
        if notify_url
        else None
    )
    existing = _existing(session, agency, address)
    if existing is not None and existing.active:
        raise ContactError(f"{existing.email} is already a contact of {agency.acronym}")
    if existing is not None:
        contact = existing
        contact.active = True
        contact.name = name or contact.name
        contact.notify_url = url
        contact.is_coordinator = coordinator
    else:
        contact = Contact(
            agency_id=_id(agency),
            email=address,
            name=name,
            notify_url=url,
            is_coordinator=coordinator,
            created_at=now,
        )
    session.add(contact)
    session.flush()
    if actor is not None:
        _audit_contact(session, contact, agency, CONTACT_ADDED, now, actor)
    return contact


def deactivate_contact(session: Session, contact_id: int, now: datetime, actor: str) -> Contact:
    """Stop sending to a contact (someone who left); kept, so its messages stay explained."""
    contact = session.get(Contact, contact_id)
    if contact is None or not contact.active:
        raise ContactError(f"no current contact {contact_id}")
    contact.active = False
    session.add(contact)
    session.flush()
    agency = session.get(Agency, contact.agency_id)
    assert agency is not None
    _audit_contact(session, contact, agency, CONTACT_REMOVED, now, actor)
    return contact


def _audit_contact(
    session: Session,
    contact: Contact,
    agency: Agency,
    action: str,
    now: datetime,
    actor: str,
    *,
    changed: Sequence[str] = (),
) -> None:
    # The address and role, never the notify URL (it may hold credentials).
    detail: dict[str, object] = {
        "email": contact.email,
        "agency": agency.acronym,
        "coordinator": contact.is_coordinator,
        "notify_url": contact.notify_url is not None,
    }
    if changed:
        detail["changed"] = list(changed)
    audit.record(
        session,
        actor=actor,
        action=action,
        at=now,
        agency_id=agency.id,
        subject=f"contact:{contact.id}",
        detail=detail,
    )


def _existing(session: Session, agency: Agency, address: str) -> Contact | None:
    return session.exec(
        select(Contact).where(
            col(Contact.agency_id) == _id(agency),
            sa.func.lower(Contact.email) == address.lower(),
        )
    ).first()


def _id(agency: Agency) -> int:
    assert agency.id is not None
    return agency.id


# --- CSV import --------------------------------------------------------------------------

CSV_COLUMNS = ("agency", "email", "name", "notify_url", "coordinator")
_TRUE = {"yes", "y", "true", "1", "x"}
_FALSE = {"no", "n", "false", "0", ""}


@dataclass
class ImportResult:
    added: list[Contact] = field(default_factory=list)
    updated: list[Contact] = field(default_factory=list)
    # Rows that matched a current contact and changed nothing.
    unchanged: list[Contact] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    agency: Agency
    email: str
    name: str | None
    notify_url: str | None
    coordinator: bool


def import_contacts(
    session: Session,
    text: str,
    now: datetime,
    actor: str | None = None,
    *,
    allow_private_hosts: bool = False,
) -> ImportResult:
    """Add (or update) contacts from CSV text with the header
    ``agency,email,name,notify_url,coordinator``. All or nothing: every problem is collected
    and raised together as one ContactError naming the line and field; nothing is written.
    With ``actor``, each contact added or changed goes to the audit log (as added by hand)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise ContactError("the CSV file is empty (it needs the header line)") from None
    columns = [cell.strip().lower() for cell in header]
    if tuple(columns) != CSV_COLUMNS:
        # Spreadsheets in some locales save CSV with semicolons.
        hint = (
            "; the file must be comma-separated" if len(columns) == 1 and ";" in header[0] else ""
        )
        raise ContactError(
            f"line 1: the header must be {','.join(CSV_COLUMNS)} (found {','.join(columns)}{hint})"
        )
    problems: list[str] = []
    rows: list[_Row] = []
    seen: dict[tuple[int, str], int] = {}
    while True:
        # A row's line is where it starts (a quoted field may hold line breaks).
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader cannot go on past such a line (an over-long field, say).
            problems.append(f"line {line}: not readable as CSV ({exc})")
            break
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(CSV_COLUMNS):
            problems.append(f"line {line}: expected {len(CSV_COLUMNS)} fields, found {len(cells)}")
            continue
        row = _read_row(
            session,
            line,
            dict(zip(CSV_COLUMNS, cells, strict=True)),
            problems,
            allow_private_hosts=allow_private_hosts,
        )
        if row is None:
            continue
        key = (_id(row.agency), row.email.lower())
        if key in seen:
            problems.append(
                f'line {line}, field "email": {row.email} of {row.agency.acronym} is already '
                f"on line {seen[key]}"
            )
            continue
        seen[key] = line
        rows.append(row)
    if problems:
        raise ContactError("nothing imported:\n  " + "\n  ".join(problems))
    result = ImportResult()
    for row in rows:
        existing = _existing(session, row.agency, row.email)
        if existing is None:
            contact = Contact(
                agency_id=_id(row.agency),
                email=row.email,
                name=row.name,
                notify_url=row.notify_url,
                is_coordinator=row.coordinator,
                created_at=now,
            )
            session.add(contact)
            session.flush()
            result.added.append(contact)
            if actor is not None:
                _audit_contact(session, contact, row.agency, CONTACT_ADDED, now, actor)
            continue
        # A blank name or notify URL keeps the stored one.
        wanted = {
            "name": row.name or existing.name,
            "notify_url": row.notify_url or existing.notify_url,
            "is_coordinator": row.coordinator,
            "active": True,
        }
        changed = [name for name, value in wanted.items() if getattr(existing, name) != value]
        if not changed:
            result.unchanged.append(existing)
            continue
        came_back = not existing.active
        for name, value in wanted.items():
            setattr(existing, name, value)
        session.add(existing)
        session.flush()
        # Someone removed who is back is added again, as when added by hand.
        (result.added if came_back else result.updated).append(existing)
        if actor is not None:
            action = CONTACT_ADDED if came_back else CONTACT_UPDATED
            shown = [] if came_back else changed
            _audit_contact(session, existing, row.agency, action, now, actor, changed=shown)
    session.flush()
    return result


def _read_row(
    session: Session,
    line: int,
    cells: dict[str, str],
    problems: list[str],
    *,
    allow_private_hosts: bool,
) -> _Row | None:
    count = len(problems)
    agency: Agency | None = None
    email = ""
    url: str | None = None
    coordinator = False
    try:
        agency = find_agency(session, cells["agency"]) if cells["agency"].strip() else None
        if agency is None:
            problems.append(f'line {line}, field "agency": it is empty')
    except ContactError as exc:
        problems.append(f'line {line}, field "agency": {exc}')
    try:
        email = normalise_email(cells["email"])
    except ContactError as exc:
        problems.append(f'line {line}, field "email": {exc}')
    name: str | None = None
    try:
        name = contact_name(cells["name"])
    except ContactError as exc:
        problems.append(f'line {line}, field "name": {exc}')
    if cells["notify_url"].strip():
        try:
            url = check_notify_url(cells["notify_url"], allow_private_hosts=allow_private_hosts)
        except ContactError as exc:
            problems.append(f'line {line}, field "notify_url": {exc}')
    flag = cells["coordinator"].strip().lower()
    if flag in _TRUE:
        coordinator = True
    elif flag not in _FALSE:
        problems.append(
            f'line {line}, field "coordinator": {cells["coordinator"].strip()!r} is not yes or no'
        )
    if len(problems) > count or agency is None:
        return None
    return _Row(line, agency, email, name, url, coordinator)


# --- listing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AgencyRow:
    agency: Agency
    parent: str | None
    contacts: int
    coordinators: int
    milestones_led: int


def agency_rows(session: Session) -> list[AgencyRow]:
    """Every agency with its parent, active contacts and milestones led (three queries)."""
    agencies = session.exec(select(Agency).order_by(col(Agency.acronym))).all()
    by_id = {a.id: a for a in agencies}
    contact_counts: dict[int, tuple[int, int]] = {}
    for agency_id, total, coordinators in session.execute(
        sa.select(
            col(Contact.agency_id),
            sa.func.count(),
            sa.func.sum(sa.case((col(Contact.is_coordinator), 1), else_=0)),
        )
        .where(col(Contact.active))
        .group_by(col(Contact.agency_id))
    ):
        contact_counts[agency_id] = (int(total), int(coordinators or 0))
    led: dict[int | None, int] = {
        key: int(count)
        for key, count in session.execute(
            sa.select(col(Milestone.lead_agency_id), sa.func.count())
            .where(col(Milestone.lead_agency_id).is_not(None))
            .group_by(col(Milestone.lead_agency_id))
        ).all()
    }
    rows = []
    for agency in agencies:
        parent = by_id.get(agency.parent_id) if agency.parent_id else None
        total, coordinators = contact_counts.get(_id(agency), (0, 0))
        rows.append(
            AgencyRow(
                agency=agency,
                parent=parent.acronym if parent else None,
                contacts=total,
                coordinators=coordinators,
                milestones_led=int(led.get(_id(agency), 0)),
            )
        )
    return rows


# --- who receives what -------------------------------------------------------------------

Recipient = tuple[Contact, str]
CHANNEL_EMAIL = "email"
CHANNEL_NOTIFY_URL = "notify_url"


def channels(contact: Contact) -> list[Recipient]:
    """A contact's email, and its notify URL as a second channel when it has one."""
    found: list[Recipient] = [(contact, CHANNEL_EMAIL)]
    if contact.notify_url:
        found.append((contact, CHANNEL_NOTIFY_URL))
    return found


def recipient_label(contact: Contact, channel: str) -> str:
    """For people and logs: the address, or which contact's notify URL. Never the URL."""
    if channel == CHANNEL_NOTIFY_URL:
        return f"notify-url of contact {contact.id}"
    return contact.email


def active_contacts(session: Session) -> list[Contact]:
    return list(
        session.exec(select(Contact).where(col(Contact.active)).order_by(col(Contact.id))).all()
    )


def lead_agency_ids(session: Session, plan_id: int) -> list[int]:
    """Agencies that lead a milestone of the plan, or are active on an objective in the
    plan's latest annual report (two queries)."""
    leads = set(
        session.exec(
            select(Milestone.lead_agency_id)
            .where(Milestone.plan_id == plan_id, col(Milestone.lead_agency_id).is_not(None))
            .distinct()
        ).all()
    )
    latest = (
        sa.select(sa.func.max(col(AnnualReport.year)))
        .where(col(AnnualReport.plan_id) == plan_id)
        .scalar_subquery()
    )
    active = session.exec(
        select(ActiveAgency.agency_id)
        .join(ObjectiveReport, col(ObjectiveReport.id) == ActiveAgency.objective_report_id)
        .join(AnnualReport, col(AnnualReport.id) == ObjectiveReport.annual_report_id)
        .where(AnnualReport.plan_id == plan_id, col(AnnualReport.year) == latest)
        .distinct()
    ).all()
    return sorted({a for a in leads if a is not None} | set(active))


def split_recipients(
    contacts: Sequence[Contact],
) -> tuple[dict[int, list[Recipient]], list[Recipient]]:
    """Agency recipients by agency id (coordinators excluded), and the coordinators."""
    by_agency: dict[int, list[Recipient]] = {}
    coordinators: list[Recipient] = []
    for contact in contacts:
        if contact.is_coordinator:
            coordinators.extend(channels(contact))
        else:
            by_agency.setdefault(contact.agency_id, []).extend(channels(contact))
    return by_agency, coordinators


def agency_parents(session: Session) -> dict[int, int | None]:
    """Every agency's parent id (one query)."""
    return {
        agency_id: parent_id
        for agency_id, parent_id in session.execute(
            sa.select(col(Agency.id), col(Agency.parent_id))
        ).all()
    }


def agencies_with_contacts(session: Session) -> set[int]:
    """Agencies with at least one active contact that is not a coordinator (one query)."""
    return set(
        session.exec(
            select(Contact.agency_id)
            .where(col(Contact.active), col(Contact.is_coordinator).is_(False))
            .distinct()
        ).all()
    )


def reached_through(
    agency_id: int, parents: Mapping[int, int | None], reachable: Container[int]
) -> int | None:
    """The agency itself when it is ``reachable``, else its nearest reachable ancestor (INZ →
    MBIE), else None."""
    seen: set[int] = set()
    current: int | None = agency_id
    while current is not None and current not in seen:
        if current in reachable:
            return current
        seen.add(current)
        current = parents.get(current)
    return None


def route_through_parents(
    by_agency: dict[int, list[Recipient]], parents: Mapping[int, int | None]
) -> dict[int, list[Recipient]]:
    """Agency recipients with business units that have no contacts of their own (INZ) reached
    through their nearest ancestor that has some (MBIE). The unit keeps its own request, link
    and messages; only who reads them changes, so nothing due for it goes unsent."""
    with_contacts = {agency_id for agency_id, found in by_agency.items() if found}
    routed = dict(by_agency)
    for agency_id in parents.keys() - with_contacts:
        via = reached_through(agency_id, parents, with_contacts)
        if via is not None:
            routed[agency_id] = by_agency[via]
    return routed
