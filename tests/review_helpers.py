"""The 2022 cycle on the imported 2021 report, for the review tests: the cycle opened with the
cycle engine, agencies' answers saved and submitted through the form's domain functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from models.answers import (
    AchievementAnswer,
    Answer,
    FurtherWorkAnswer,
    MilestoneAnswer,
    MilestoneProgress,
)
from models.contacts import add_contact
from models.cycles import open_cycle
from models.importer import import_report
from models.submissions import load_request_view, save_answer
from models.tables import Agency, Cycle, Milestone, Plan, UpdateRequest

IMPORTED = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)
OPENED = datetime(2022, 11, 1, 20, 0, tzinfo=UTC)
ANSWERED = datetime(2022, 12, 5, 21, 0, tzinfo=UTC)
DEADLINE = date(2023, 2, 28)
COORDINATOR = "coordinator@mbie.govt.nz"

# Milestones of the 2021 report, by the start of their text.
AEWV = "Accredited Employer Work Visa"  # "July 2022 – … (Delayed from 2021)."
BILL = "Migrant worker protection bill"  # "Quarter 2 2022 – … (Delayed from Q3 2021)."


@dataclass
class Cycle2022:
    plan: Plan
    cycle: Cycle
    agencies: dict[str, Agency]
    requests: dict[str, UpdateRequest]
    milestones: dict[str, Milestone] = field(default_factory=dict)

    def milestone(self, start: str) -> Milestone:
        for milestone in self.milestones.values():
            if milestone.text.startswith(start):
                return milestone
        raise KeyError(start)


def open_2022(session: Session, report_text: str, *, contacts: bool = True) -> Cycle2022:
    summary = import_report(session, report_text, IMPORTED)
    plan = session.get(Plan, summary.plan_id)
    assert plan is not None
    agencies = {a.acronym: a for a in session.exec(select(Agency))}
    if contacts:
        for acronym, agency in agencies.items():
            add_contact(session, agency, f"contact@{acronym.lower()}.govt.nz", IMPORTED)
        add_contact(session, agencies["MBIE"], COORDINATOR, IMPORTED, coordinator=True)
    opened = open_cycle(session, plan, 2022, DEADLINE, OPENED, COORDINATOR)
    requests = {r.agency.acronym: r.request for r in opened.requests}
    milestones = {
        m.text: m for m in session.exec(select(Milestone).where(col(Milestone.plan_id) == plan.id))
    }
    return Cycle2022(plan, opened.cycle, agencies, requests, milestones)


def complete_answer(
    session: Session,
    request: UpdateRequest,
    *,
    progress: dict[int, MilestoneAnswer] | None = None,
    achievements: list[tuple[int, str]] | None = None,
    further_work: list[tuple[int, str]] | None = None,
    link: tuple[str, str] | None = None,
) -> Answer:
    """An answer to every milestone of the request (on track unless ``progress`` says
    otherwise), with the given achievements and further work (objective id, text)."""
    assert request.id is not None
    view = load_request_view(session, request.id)
    given = progress or {}
    answers = [
        given.get(mid, MilestoneAnswer(milestone_id=mid, progress=MilestoneProgress.ON_TRACK))
        for mid in view.milestones
    ]
    return Answer(
        milestones=answers,
        achievements=[
            AchievementAnswer(
                objective_id=oid,
                text=text,
                link_title=link[0] if link else None,
                link_url=link[1] if link else None,
            )
            for oid, text in achievements or []
        ],
        further_work=[FurtherWorkAnswer(objective_id=oid, text=t) for oid, t in further_work or []],
    )


def submit(
    session: Session,
    request: UpdateRequest,
    answer: Answer,
    now: datetime = ANSWERED,
    author: str = "contact@agency.govt.nz",
) -> None:
    assert request.id is not None
    session.refresh(request)
    save_answer(
        session,
        request.id,
        answer,
        submit=True,
        base_revision=request.revision_number,
        author=author,
        now=now,
    )
    session.refresh(request)


def objective_ids(session: Session, request: UpdateRequest) -> list[int]:
    assert request.id is not None
    return [o.id for o in load_request_view(session, request.id).objectives]
