"""The dashboard's milestones page and the lead correction, through FastAPI's TestClient on the
real databases (the 2022 cycle of the real 2021 report open)."""

from __future__ import annotations

import html

from sqlmodel import Session, col, select

from models.contacts import find_agency
from models.milestone_leads import LEAD_CHANGED
from models.tables import Agency, AuditEvent, Milestone, UpdateRequest
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

TRIAGE = "Implementation of joint INZ-ENZ migrant exploitation allegation triage"


def _triage(session: Session) -> Milestone:
    found = session.exec(select(Milestone).where(col(Milestone.text).startswith(TRIAGE))).one()
    assert found.id is not None
    return found


def test_signed_out_nothing_is_shown_or_changed(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
) -> None:
    client = make_client()
    triage = _triage(session)
    for path in ("/dashboard/milestones", f"/dashboard/milestones/{triage.id}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/signin"
    signin = client.get("/dashboard/signin")
    posted = client.post(
        f"/dashboard/milestones/{triage.id}/lead",
        data={"csrf": csrf_of(signin.text), "agency": "NZP"},
        follow_redirects=False,
    )
    assert posted.status_code == 303 and posted.headers["location"] == "/dashboard/signin"
    session.refresh(triage)
    assert triage.lead_agency_id == find_agency(session, "INZ").id


def test_a_coordinator_finds_a_milestone_and_corrects_its_lead(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
) -> None:
    client, _csrf = signed_in(make_client)
    triage = _triage(session)

    listed = client.get("/dashboard/milestones", params={"agency": "inz"})
    assert listed.status_code == 200
    text = html.unescape(listed.text)
    assert TRIAGE in text and "4 milestones." in text
    assert 'value="INZ" selected' in listed.text
    searched = html.unescape(
        client.get("/dashboard/milestones", params={"q": "triage and reporting"}).text
    )
    assert "1 milestone." in searched and f'href="/dashboard/milestones/{triage.id}"' in searched
    planned = client.get("/dashboard/milestones", params={"status": "planned", "q": "triage"})
    assert 'value="planned" selected' in planned.text and TRIAGE in planned.text
    done = client.get("/dashboard/milestones", params={"status": "completed"})
    assert "0 milestones." in done.text
    bogus = client.get("/dashboard/milestones", params={"status": "late"})
    assert "status &#39;late&#39;: one of" in bogus.text
    unknown = client.get("/dashboard/milestones", params={"agency": "XYZ"})
    assert unknown.status_code == 200 and "no agency &#39;XYZ&#39;" in unknown.text

    detail = client.get(f"/dashboard/milestones/{triage.id}")
    assert detail.status_code == 200
    assert "Quarter 1 2022" in detail.text and "Immigration New Zealand (INZ)" in detail.text
    # Its "(Delayed from July 2021)" is the first line of its history.
    assert "due July 2021 → Quarter 1 2022 (reported in 2021), by import" in detail.text

    # A forged CSRF token changes nothing.
    forged = client.post(
        f"/dashboard/milestones/{triage.id}/lead",
        data={"csrf": "forged", "agency": "NZP"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    # An empty choice is an error beside the field, nothing changed.
    empty = client.post(
        f"/dashboard/milestones/{triage.id}/lead",
        data={"csrf": csrf_of(detail.text), "agency": "", "reason": "kept <b>"},
    )
    assert empty.status_code == 422
    assert "Choose the agency that leads this milestone." in empty.text
    assert 'value="kept &lt;b&gt;"' in empty.text
    session.refresh(triage)
    assert triage.lead_agency_id == find_agency(session, "INZ").id

    changed = client.post(
        f"/dashboard/milestones/{triage.id}/lead",
        data={"csrf": csrf_of(detail.text), "agency": "ENZ", "reason": "ENZ runs the triage"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == f"/dashboard/milestones/{triage.id}"
    after = client.get(changed.headers["location"])
    assert f"Milestone {triage.id}: ENZ leads it now (was INZ)." in after.text
    assert "lead INZ → ENZ, by " + EMAIL + ": ENZ runs the triage" in html.unescape(after.text)
    session.refresh(triage)
    assert triage.lead_agency_id == find_agency(session, "ENZ").id
    (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == LEAD_CHANGED)).all()
    assert event.actor == EMAIL and event.cycle_id == c.cycle.id


def test_a_new_lead_gets_an_update_request_in_the_open_cycle(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
) -> None:
    customs = Agency(acronym="NZCS", full_name="New Zealand Customs Service")
    session.add(customs)
    session.commit()
    client, _csrf = signed_in(make_client)
    triage = _triage(session)
    detail = client.get(f"/dashboard/milestones/{triage.id}")
    assert 'value="NZCS"' in detail.text
    changed = client.post(
        f"/dashboard/milestones/{triage.id}/lead",
        data={"csrf": csrf_of(detail.text), "agency": "NZCS"},
    )
    assert changed.status_code == 200
    assert "NZCS had no update request in the open 2022 cycle: one was added" in changed.text
    requests = session.exec(
        select(UpdateRequest).where(
            UpdateRequest.cycle_id == c.cycle.id, UpdateRequest.agency_id == customs.id
        )
    ).all()
    assert len(requests) == 1
    assert client.get("/dashboard/milestones/999999").status_code == 404
