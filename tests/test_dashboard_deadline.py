"""The dashboard's deadline page: a coordinator moves the cycle's deadline or extends one
agency's, through FastAPI's TestClient on the real databases (the 2022 cycle of the real 2021
report open, MBIE has submitted)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col, select

from models.tables import AuditEvent, Cycle, Notification, UpdateRequest
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
from tests.review_helpers import DEADLINE, Cycle2022


def _deadline_events(session: Session) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.exec(
            select(AuditEvent).where(col(AuditEvent.action).like("%.deadline_changed"))
        ).all()
    )


def test_signed_out_the_page_and_its_form_do_nothing(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
) -> None:
    client = make_client()
    url = f"/dashboard/cycles/{c.cycle.id}/deadline"
    assert client.get(url, follow_redirects=False).status_code == 303
    signin = client.get("/dashboard/signin")
    posted = client.post(
        url,
        data={"csrf": csrf_of(signin.text), "deadline": "2023-03-31"},
        follow_redirects=False,
    )
    assert posted.headers["location"] == "/dashboard/signin"
    assert _deadline_events(session) == []


def test_a_coordinator_extends_one_agency_then_moves_everyones_deadline(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
    enqueued: list[int],
) -> None:
    client, _csrf = signed_in(make_client)
    url = f"/dashboard/cycles/{c.cycle.id}/deadline"
    page = client.get(url)
    assert page.status_code == 200
    assert "the cycle's deadline is <strong>Tuesday 28 February 2023</strong>" in page.text
    # MBIE has submitted: it is not offered an extension.
    assert '<option value="NZP">' in page.text and '<option value="MBIE">' not in page.text
    csrf = csrf_of(page.text)

    done = client.post(
        url,
        data={
            "csrf": csrf,
            "agency": "NZP",
            "deadline": "2023-03-14",
            "reason": "Police <b>restructure</b>",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == url
    page = client.get(url)
    told = "NZP&#39;s deadline is now 2023-03-14. Told: NZP (1 message(s) to send)."
    assert told in page.text
    assert "2023-03-14 <strong>(extended)</strong>" in page.text
    session.expire_all()
    nzp = session.get(UpdateRequest, c.requests["NZP"].id)
    assert nzp is not None and nzp.extended_deadline == date(2023, 3, 14)
    (notice,) = session.exec(select(Notification).where(col(Notification.id).in_(enqueued))).all()
    assert notice.kind == "deadline_changed" and notice.agency_id == c.agencies["NZP"].id
    assert notice.context["reason"] == "Police <b>restructure</b>"
    (event,) = _deadline_events(session)
    assert event.actor == EMAIL and event.detail["deadline"] == "2023-03-14"
    # The overview links here and shows the extension; its times are Wellington's.
    overview = client.get(f"/dashboard/cycles/{c.cycle.id}").text
    assert f'<a href="{url}">' in overview
    assert "deadline extended to 2023-03-14" in overview
    assert "2022-12-06 10:00 NZDT" in overview  # MBIE's answer, 5 December 21:00 UTC

    # Everyone's deadline a week later: every agency still to answer is told, except NZP,
    # whose extension is later still; MBIE has submitted.
    moved = client.post(url, data={"csrf": csrf, "deadline": "2023-03-07"}, follow_redirects=False)
    assert moved.status_code == 303
    page = client.get(url)
    assert "The 2022 deadline is now 2023-03-07. Told: " in page.text
    session.expire_all()
    cycle = session.get(Cycle, c.cycle.id)
    assert cycle is not None and cycle.deadline == date(2023, 3, 7)
    told = {e.agency_id for e in _deadline_events(session) if e.action.startswith("request.")}
    assert c.agencies["MBIE"].id not in told
    assert c.agencies["DIA"].id in told


def test_a_bad_deadline_is_refused_beside_the_field_and_changes_nothing(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
    enqueued: list[int],
) -> None:
    client, _csrf = signed_in(make_client)
    url = f"/dashboard/cycles/{c.cycle.id}/deadline"
    csrf = csrf_of(client.get(url).text)

    bad = client.post(url, data={"csrf": csrf, "deadline": "soon", "reason": "<i>why</i>"})
    assert bad.status_code == 422
    assert "New deadline: “soon” is not a date" in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert 'value="&lt;i&gt;why&lt;/i&gt;"' in bad.text  # kept, and escaped

    earlier = client.post(url, data={"csrf": csrf, "agency": "NZP", "deadline": "2023-02-01"})
    assert earlier.status_code == 422
    assert "NZP&#39;s deadline cannot be earlier than the cycle&#39;s (2023-02-28)" in earlier.text

    past = client.post(url, data={"csrf": csrf, "deadline": "2022-12-01"})
    assert past.status_code == 422 and "is before today (2022-12-08)" in past.text

    forged = client.post(url, data={"csrf": "forged", "deadline": "2023-03-31"})
    assert forged.status_code == 403

    assert _deadline_events(session) == [] and enqueued == []
    session.expire_all()
    cycle = session.get(Cycle, c.cycle.id)
    assert cycle is not None and cycle.deadline == DEADLINE
