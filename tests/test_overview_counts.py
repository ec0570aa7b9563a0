"""The overview's milestone counts (status table, per-agency counts, per-objective chart) come
from one scan of the milestone table (``models.cycles.tally_milestones``): checked here against
a count made milestone by milestone, with every status, slipped or not, with and without a
lead agency, due inside and outside the cycle, on both backends."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date

from sqlmodel import Session, select

from models.cycles import OPEN_MILESTONE, cycle_status, tally_milestones
from models.overview import milestone_stats, milestones_by_lead, overview
from models.tables import Milestone, MilestoneStatus
from tests.review_helpers import open_2022


def _status_key(m: Milestone) -> str | None:
    if m.status is MilestoneStatus.COMPLETED:
        return "completed"
    if m.status is MilestoneStatus.DROPPED:
        return None
    if m.slipped_on is not None:
        return "slipped"
    return "delayed" if m.status is MilestoneStatus.DELAYED else "on_track"


def test_the_one_scan_counts_match_a_count_of_each_milestone(
    session: Session, report_2021_text: str
) -> None:
    c = open_2022(session, report_2021_text)
    milestones = session.exec(select(Milestone).order_by(Milestone.id)).all()  # type: ignore[arg-type]
    # Spread every combination over the real plan's milestones.
    combinations = itertools.cycle(
        itertools.product(
            list(MilestoneStatus),
            (None, date(2022, 4, 1)),
            (date(2022, 6, 30), date(2024, 3, 31), date(2021, 12, 31)),
        )
    )
    leads = itertools.cycle([True, True, False])
    for milestone, (status, slipped_on, due_end), has_lead in zip(
        milestones, combinations, leads, strict=False
    ):
        milestone.status = status
        milestone.slipped_on = slipped_on
        milestone.due_end = due_end
        if not has_lead:
            milestone.lead_agency_id = None
        session.add(milestone)
    session.commit()
    milestones = session.exec(select(Milestone)).all()
    assert len({(m.status, m.slipped_on, m.due_end) for m in milestones}) >= 12

    tally = tally_milestones(session, c.cycle)

    # Per lead agency, as the overview counts them.
    expected_by_lead: dict[int, Counter[str]] = {}
    for m in milestones:
        key = _status_key(m)
        if m.lead_agency_id is not None and key is not None:
            expected_by_lead.setdefault(m.lead_agency_id, Counter())[key] += 1
    by_lead = milestones_by_lead(tally)
    assert {lead: {k: v for k, v in counts.items() if v} for lead, counts in by_lead.items()} == {
        lead: dict(counts) for lead, counts in expected_by_lead.items()
    }

    # Per objective, with the dropped ones apart.
    stats = {s.objective_id: s for s in milestone_stats(session, c.plan.id or 0, tally)}
    for objective_id in {m.objective_id for m in milestones}:
        mine = [m for m in milestones if m.objective_id == objective_id]
        counts = Counter(k for m in mine if (k := _status_key(m)) is not None)
        assert {k: v for k, v in stats[objective_id].counts.items() if v} == dict(counts)
        assert stats[objective_id].dropped == sum(m.status is MilestoneStatus.DROPPED for m in mine)

    # The status table: due within 2022 (or by the deadline) and not dropped; slipped and open.
    window = (date(2022, 1, 1), max(date(2022, 12, 31), c.cycle.deadline))
    rows = {row.agency.id: row for row in cycle_status(session, c.cycle)}
    for agency_id, row in rows.items():
        led = [m for m in milestones if m.lead_agency_id == agency_id]
        assert row.milestones_due == sum(
            m.status is not MilestoneStatus.DROPPED
            and m.due_end is not None
            and window[0] <= m.due_end <= window[1]
            for m in led
        ), row.agency.acronym
        assert row.slipped == sum(
            m.slipped_on is not None and m.status in OPEN_MILESTONE for m in led
        ), row.agency.acronym
    assert any(row.milestones_due for row in rows.values())
    assert any(row.slipped for row in rows.values())

    # The overview passes the one tally to all three and shows the same.
    view = overview(session, c.cycle)
    assert {a.acronym: a.milestones_due for a in view.agencies} == {
        row.agency.acronym: row.milestones_due for row in rows.values()
    }
    assert [o.counts for o in view.objectives] == [
        s.counts for s in milestone_stats(session, c.plan.id or 0, tally)
    ]
