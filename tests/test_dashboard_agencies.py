"""The dashboard's agencies page: contacts shown, added and removed by a coordinator, through
FastAPI's TestClient on the real databases (the 2022 cycle of the real 2021 report open)."""

from __future__ import annotations

import html

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.contacts import CONTACT_ADDED, CONTACT_REMOVED, find_agency
from models.tables import AuditEvent, Contact
from tests.dashboard_support import (  # noqa: F401  (fixtures)
    EMAIL,
    ClientFactory,
    c,
    clock,
    csrf_of,
    enqueued,
    make_client,
    signed_in,
)
from tests.review_helpers import Cycle2022


def _contacts(session: Session, email: str) -> list[Contact]:
    session.expire_all()
    return list(
        session.exec(select(Contact).where(sa.func.lower(Contact.email) == email.lower())).all()
    )


def test_signed_out_the_page_and_its_forms_do_nothing(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
) -> None:
    client = make_client()
    assert client.get("/dashboard/agencies", follow_redirects=False).status_code == 303
    signin = client.get("/dashboard/signin")
    posted = client.post(
        "/dashboard/agencies/contacts",
        data={"csrf": csrf_of(signin.text), "agency": "DIA", "email": "x@dia.govt.nz"},
        follow_redirects=False,
    )
    assert posted.headers["location"] == "/dashboard/signin"
    assert _contacts(session, "x@dia.govt.nz") == []


def test_a_coordinator_adds_and_removes_contacts(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
) -> None:
    client, _csrf = signed_in(make_client)
    page = client.get("/dashboard/agencies")
    assert page.status_code == 200
    assert "contact@inz.govt.nz" in page.text and "reached through" not in page.text
    csrf = csrf_of(page.text)
    # INZ's contact leaves: INZ is then reached through MBIE's.
    (inz,) = _contacts(session, "contact@inz.govt.nz")
    left = client.post(
        f"/dashboard/contacts/{inz.id}/remove", data={"csrf": csrf}, follow_redirects=False
    )
    assert left.status_code == 303
    page = client.get(left.headers["location"])
    assert "contact@inz.govt.nz gets no more messages" in page.text
    assert "reached through MBIE" in page.text and "contact@inz.govt.nz</" not in page.text

    bad = client.post(
        "/dashboard/agencies/contacts",
        data={
            "csrf": csrf,
            "agency": "DIA",
            "email": "not an address",
            "name": "Dana <b>",
            "notify_url": "tgram://secret-bot-token/123",
        },
    )
    assert bad.status_code == 422
    assert "not an address" in html.unescape(bad.text)
    assert 'value="Dana &lt;b&gt;"' in bad.text
    assert "secret-bot-token" not in bad.text  # a notify URL is never sent back
    private = client.post(
        "/dashboard/agencies/contacts",
        data={
            "csrf": csrf,
            "agency": "DIA",
            "email": "ops@dia.govt.nz",
            "notify_url": "json://ops:hunter2-secret@169.254.169.254/latest",
        },
    )
    assert private.status_code == 422
    assert "points at 169.254.169.254, a private or local address" in html.unescape(private.text)
    assert "hunter2-secret" not in private.text
    assert _contacts(session, "ops@dia.govt.nz") == []

    added = client.post(
        "/dashboard/agencies/contacts",
        data={
            "csrf": csrf,
            "agency": "DIA",
            "email": "Dana@DIA.govt.nz",
            "name": "Dana",
            "notify_url": "json://hooks.example.org/dia",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    after = client.get(added.headers["location"])
    # The domain is lower-cased; the local part is kept as written.
    assert "Dana@dia.govt.nz is now a contact of DIA." in after.text
    assert "+ notify URL" in after.text and "hooks.example.org" not in after.text
    (dana,) = _contacts(session, "dana@dia.govt.nz")
    assert dana.agency_id == find_agency(session, "DIA").id and dana.active
    again = client.post(
        "/dashboard/agencies/contacts",
        data={"csrf": csrf, "agency": "DIA", "email": "dana@dia.govt.nz"},
    )
    assert again.status_code == 422
    assert "Dana@dia.govt.nz is already a contact of DIA" in again.text

    removed = client.post(
        f"/dashboard/contacts/{dana.id}/remove", data={"csrf": csrf}, follow_redirects=False
    )
    assert removed.status_code == 303
    (dana,) = _contacts(session, "dana@dia.govt.nz")
    assert not dana.active
    assert (
        client.post(f"/dashboard/contacts/{dana.id}/remove", data={"csrf": csrf}).status_code == 404
    )
    # Adding the same address again brings the contact back.
    back = client.post(
        "/dashboard/agencies/contacts",
        data={"csrf": csrf, "agency": "dia", "email": "dana@dia.govt.nz", "coordinator": "yes"},
        follow_redirects=False,
    )
    assert back.status_code == 303
    (dana,) = _contacts(session, "dana@dia.govt.nz")
    assert dana.active and dana.is_coordinator and dana.notify_url is None

    events = session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.action).in_([CONTACT_ADDED, CONTACT_REMOVED]))
        .order_by(col(AuditEvent.id))
    ).all()
    assert [(e.action, e.actor) for e in events] == [
        (CONTACT_REMOVED, EMAIL),
        (CONTACT_ADDED, EMAIL),
        (CONTACT_REMOVED, EMAIL),
        (CONTACT_ADDED, EMAIL),
    ]
    assert events[1].detail == {
        "email": "Dana@dia.govt.nz",
        "agency": "DIA",
        "coordinator": False,
        "notify_url": True,
    }
    forged = client.post(
        "/dashboard/agencies/contacts",
        data={"csrf": "forged", "agency": "DIA", "email": "eve@dia.govt.nz"},
    )
    assert forged.status_code == 403 and _contacts(session, "eve@dia.govt.nz") == []
