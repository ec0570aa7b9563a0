"""The agency answer domain (models/submissions.py), directly on the real databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from models.answers import (
    AchievementAnswer,
    Answer,
    FurtherWorkAnswer,
    MilestoneAnswer,
    MilestoneProgress,
    NewMilestoneAnswer,
)
from models.submissions import (
    WITHDRAWN_NOTE,
    Conflict,
    InvalidAnswer,
    NotEditable,
    load_request_view,
    mark_opened,
    reopen,
    revisions,
    save_answer,
    validate_answer,
)
from models.tables import (
    AccessToken,
    AuditEvent,
    Cycle,
    CycleState,
    EntryLink,
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    ObjectiveReport,
    ReportEntry,
    RequestState,
    RevisionKind,
    UpdateRequest,
)
from tests.web_helpers import NOW, Scenario, build_scenario

WHO = "kahu@mbie.test"


@pytest.fixture
def scenario(session: Session) -> Scenario:
    return build_scenario(session)


def full_answer(scenario: Scenario, new_period: str = "Quarter 4 2022") -> Answer:
    done, late = scenario.milestone_ids
    return Answer(
        milestones=[
            MilestoneAnswer(
                milestone_id=done,
                progress=MilestoneProgress.COMPLETED,
                completed_on=date(2022, 2, 1),
                achievement="Guidance published.",
            ),
            MilestoneAnswer(
                milestone_id=late,
                progress=MilestoneProgress.DELAYED,
                new_period=new_period,
                reason="Translation is late.",
            ),
        ],
        achievements=[
            AchievementAnswer(
                objective_id=scenario.objective_id,
                text="Hotline launched – ka pai.",
                link_title="Hotline",
                link_url="https://example.govt.nz/hotline",
            )
        ],
        further_work=[FurtherWorkAnswer(objective_id=scenario.objective_id, text="Evaluate.")],
        new_milestones=[
            NewMilestoneAnswer(
                objective_id=scenario.objective_id, period="Q1 2023", text="Review the hotline."
            )
        ],
    )


def test_the_view_shows_the_agencys_objectives_milestones_and_last_year(
    session: Session, scenario: Scenario
) -> None:
    view = load_request_view(session, scenario.request_id)
    assert view.agency_name == "Hīkina Whakatutuki – Ministry of Business"
    assert [o.id for o in view.objectives] == [scenario.objective_id]
    [objective] = view.objectives
    assert [m.id for m in objective.milestones] == scenario.milestone_ids
    assert scenario.other_milestone_id not in view.milestones
    assert objective.last_year == 2021
    assert [e.text for e in objective.last_achievements] == [
        "Delivered training to 200 Immigration NZ staff."
    ]
    assert objective.last_achievements[0].links[0].url == "https://www.mbie.govt.nz/training"
    assert objective.actions == (("1", "Train frontline staff to identify trafficking."),)
    # Sole agency on the objective: last year's further work is carried forward to edit.
    start = view.starting_answer()
    assert [w.text for w in start.further_work] == ["Extend training to labour inspectors."]
    assert view.editable and not view.can_reopen


def test_validation_names_each_field(session: Session, scenario: Scenario) -> None:
    view = load_request_view(session, scenario.request_id)
    done, late = scenario.milestone_ids
    answer = Answer(
        milestones=[
            MilestoneAnswer(milestone_id=late, progress=MilestoneProgress.DELAYED, new_period="Q5"),
        ],
        achievements=[
            AchievementAnswer(objective_id=scenario.objective_id, text="ok", link_url="ftp://x"),
            AchievementAnswer(objective_id=scenario.objective_id, text=" ", link_title="T"),
        ],
        new_milestones=[
            NewMilestoneAnswer(objective_id=scenario.objective_id, period="", text="Something")
        ],
    )
    draft_errors = {e.field for e in validate_answer(view, answer, final=False)}
    o = scenario.objective_id
    assert draft_errors == {
        f"m-{late}-new_period",
        f"a-{o}-0-link_url",
        f"a-{o}-0-link_title",
        f"a-{o}-1-text",
        f"a-{o}-1-link_url",
        f"n-{o}-0-period",
    }
    final_errors = {e.field for e in validate_answer(view, answer, final=True)}
    assert final_errors == draft_errors | {f"m-{done}-progress", f"m-{late}-reason"}
    foreign = Answer(
        milestones=[MilestoneAnswer(milestone_id=scenario.other_milestone_id)],
        further_work=[FurtherWorkAnswer(objective_id=scenario.second_objective_id, text="x")],
    )
    assert {e.field for e in validate_answer(view, foreign, final=False)} == {"form"}


def test_a_period_already_over_is_refused_for_a_delay_or_a_new_milestone(
    session: Session, scenario: Scenario
) -> None:
    # Moving a milestone to a period that has already ended (a typo in the year, usually)
    # would have it flagged as slipped again the moment it is saved.
    view = load_request_view(session, scenario.request_id)
    late = scenario.milestone_ids[1]
    o = scenario.objective_id
    answer = full_answer(scenario, new_period="Quarter 4 2021")
    answer.new_milestones = [NewMilestoneAnswer(objective_id=o, period="2021", text="Review")]
    today = NOW.date()  # 14 February 2022
    errors = validate_answer(view, answer, final=False, today=today)
    assert {e.field: e.message for e in errors} == {
        f"m-{late}-new_period": "“Quarter 4 2021” has already ended. Enter the period it is "
        "now due in, such as a later quarter or year.",
        f"n-{o}-0-period": "“2021” has already ended. Enter the period it is now due in, "
        "such as a later quarter or year.",
    }
    # The period under way (Quarter 1 2022) and later ones are fine.
    answer = full_answer(scenario, new_period="Quarter 1 2022")
    answer.new_milestones = [NewMilestoneAnswer(objective_id=o, period="2022", text="Review")]
    assert validate_answer(view, answer, final=True, today=today) == []
    with pytest.raises(InvalidAnswer):
        save_answer(
            session,
            scenario.request_id,
            full_answer(scenario, new_period="Q3 2021"),
            submit=True,
            base_revision=0,
            author=WHO,
            now=NOW,
        )
    session.rollback()
    assert revisions(session, scenario.request_id) == []


def test_whether_a_period_has_ended_is_judged_by_the_agencys_date(
    session: Session, scenario: Scenario
) -> None:
    # 31 March 2022, 12:00 UTC is already 1 April 01:00 in Wellington: Quarter 1 2022 is over
    # there, though not yet in UTC.
    just_after = datetime(2022, 3, 31, 12, 0, tzinfo=UTC)
    with pytest.raises(InvalidAnswer) as raised:
        save_answer(
            session,
            scenario.request_id,
            full_answer(scenario, new_period="Quarter 1 2022"),
            submit=False,
            base_revision=0,
            author=WHO,
            now=just_after,
        )
    (error,) = raised.value.errors
    assert error.message.startswith("“Quarter 1 2022” has already ended.")
    session.rollback()
    # Where the agency is still in March (UTC here), the quarter is under way.
    save_answer(
        session,
        scenario.request_id,
        full_answer(scenario, new_period="Quarter 1 2022"),
        submit=False,
        base_revision=0,
        author=WHO,
        now=just_after,
        timezone="UTC",
    )


def test_an_invalid_answer_writes_nothing(session: Session, scenario: Scenario) -> None:
    bad = full_answer(scenario, new_period="whenever")
    with pytest.raises(InvalidAnswer) as raised:
        save_answer(
            session, scenario.request_id, bad, submit=True, base_revision=0, author=WHO, now=NOW
        )
    assert [e.field for e in raised.value.errors] == [f"m-{scenario.milestone_ids[1]}-new_period"]
    session.rollback()
    assert revisions(session, scenario.request_id) == []


def test_a_save_based_on_an_old_revision_is_a_conflict(
    session: Session, scenario: Scenario
) -> None:
    first = Answer(further_work=[FurtherWorkAnswer(objective_id=scenario.objective_id, text="A")])
    second = Answer(further_work=[FurtherWorkAnswer(objective_id=scenario.objective_id, text="B")])
    save_answer(
        session, scenario.request_id, first, submit=False, base_revision=0, author="a@x", now=NOW
    )
    session.commit()
    with pytest.raises(Conflict) as raised:
        save_answer(
            session,
            scenario.request_id,
            second,
            submit=False,
            base_revision=0,
            author="b@x",
            now=NOW,
        )
    session.rollback()
    assert raised.value.revision_number == 1
    assert raised.value.latest is not None and raised.value.latest.author == "a@x"
    saved = revisions(session, scenario.request_id)
    assert [(r.number, r.author, r.answer.further_work[0].text) for r in saved] == [(1, "a@x", "A")]


def test_submit_applies_to_the_milestones_once_even_after_a_reopen(
    session: Session, scenario: Scenario
) -> None:
    done, late = scenario.milestone_ids
    answer = full_answer(scenario)
    result = save_answer(
        session, scenario.request_id, answer, submit=True, base_revision=0, author=WHO, now=NOW
    )
    session.commit()
    assert result.state is RequestState.SUBMITTED and result.kind is RevisionKind.SUBMITTED
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    assert request.state is RequestState.SUBMITTED and request.submitted_at == NOW

    def history() -> list[tuple[int, str | None, str | None, str | None]]:
        session.expire_all()
        return [
            (r.year, r.previous_due_text, r.new_due_text, r.reason)
            for r in session.exec(
                select(MilestoneRevision)
                .where(MilestoneRevision.milestone_id == late)
                .order_by(col(MilestoneRevision.sequence))
            )
        ]

    def added() -> list[tuple[str, str | None, MilestoneStatus]]:
        session.expire_all()
        return [
            (m.text, m.due_text, m.status)
            for m in session.exec(
                select(Milestone)
                .where(Milestone.objective_id == scenario.objective_id)
                .where(Milestone.first_reported_year == 2022)
                .order_by(col(Milestone.id))
            )
        ]

    assert history() == [(2022, "Quarter 2 2022", "Quarter 4 2022", "Translation is late.")]
    assert added() == [("Review the hotline.", "Q1 2023", MilestoneStatus.PLANNED)]
    completed = session.get(Milestone, done)
    assert completed is not None and completed.status is MilestoneStatus.COMPLETED

    # Reopened, the form still lists the milestones it answered (completed included).
    later = NOW + timedelta(days=1)
    reopen(session, scenario.request_id, author=WHO, now=later)
    session.commit()
    view = load_request_view(session, scenario.request_id)
    assert view.state is RequestState.DRAFT and set(view.milestones) == {done, late}
    assert view.starting_answer() == answer

    # Submitted again unchanged: nothing new. With a later period: this year's revision is
    # amended, not doubled; a new milestone renamed replaces the old one.
    save_answer(
        session, scenario.request_id, answer, submit=True, base_revision=1, author=WHO, now=later
    )
    session.commit()
    assert history() == [(2022, "Quarter 2 2022", "Quarter 4 2022", "Translation is late.")]
    assert len(added()) == 1
    reopen(session, scenario.request_id, author=WHO, now=later)
    changed = full_answer(scenario, new_period="H1 2023")
    changed.new_milestones[0].text = "Review the hotline with employers."
    save_answer(
        session, scenario.request_id, changed, submit=True, base_revision=2, author=WHO, now=later
    )
    session.commit()
    assert history() == [(2022, "Quarter 2 2022", "H1 2023", "Translation is late.")]
    delayed = session.get(Milestone, late)
    assert delayed is not None
    assert (delayed.due_text, delayed.due_start, delayed.due_end) == (
        "H1 2023",
        date(2023, 1, 1),
        date(2023, 6, 30),
    )
    assert added() == [
        ("Review the hotline.", "Q1 2023", MilestoneStatus.DROPPED),
        ("Review the hotline with employers.", "Q1 2023", MilestoneStatus.PLANNED),
    ]
    withdrawn = session.exec(select(Milestone).where(Milestone.text == "Review the hotline.")).one()
    assert withdrawn.status_note == WITHDRAWN_NOTE

    # Finally on track after all: the delay of this cycle is undone, the baseline restored.
    reopen(session, scenario.request_id, author=WHO, now=later)
    on_track = full_answer(scenario)
    on_track.milestones[1] = MilestoneAnswer(milestone_id=late, progress=MilestoneProgress.ON_TRACK)
    save_answer(
        session, scenario.request_id, on_track, submit=True, base_revision=3, author=WHO, now=later
    )
    session.commit()
    assert history() == []
    restored = session.get(Milestone, late)
    assert restored is not None
    assert (restored.due_text, restored.status) == ("Quarter 2 2022", MilestoneStatus.ON_TRACK)
    assert [r.number for r in revisions(session, scenario.request_id)] == [1, 2, 3, 4]
    assert (
        len(
            session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "request.reopened",
                    AuditEvent.cycle_id == scenario.cycle_id,
                )
            ).all()
        )
        == 3
    )


def test_submitted_and_approved_answers_cannot_be_saved(
    session: Session, scenario: Scenario
) -> None:
    answer = full_answer(scenario)
    save_answer(
        session, scenario.request_id, answer, submit=True, base_revision=0, author=WHO, now=NOW
    )
    session.commit()
    with pytest.raises(NotEditable, match="reopen"):
        save_answer(
            session,
            scenario.request_id,
            answer,
            submit=False,
            base_revision=1,
            author=WHO,
            now=NOW,
        )
    cycle = session.get(Cycle, scenario.cycle_id)
    assert cycle is not None
    cycle.state = CycleState.APPROVED
    session.add(cycle)
    session.commit()
    with pytest.raises(NotEditable, match="approved"):
        reopen(session, scenario.request_id, author=WHO, now=NOW)


def test_opening_marks_the_request_and_the_link(session: Session, scenario: Scenario) -> None:
    token = session.exec(
        select(AccessToken).where(AccessToken.update_request_id == scenario.request_id)
    ).one()
    assert token.id is not None
    mark_opened(session, scenario.request_id, token.id, author=WHO, now=NOW)
    session.commit()
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    assert request.state is RequestState.OPENED and request.opened_at == NOW
    assert token.last_used_at == NOW
    # Opening again later does not move a draft back to "opened".
    request.state = RequestState.DRAFT
    session.add(request)
    mark_opened(session, scenario.request_id, token.id, author=WHO, now=NOW + timedelta(1))
    assert request.state is RequestState.DRAFT and request.opened_at == NOW


def test_an_imported_link_that_is_not_http_is_shown_as_text(
    session: Session, scenario: Scenario
) -> None:
    link = session.exec(
        select(EntryLink)
        .join(ReportEntry, col(ReportEntry.id) == EntryLink.entry_id)
        .join(ObjectiveReport, col(ObjectiveReport.id) == ReportEntry.objective_report_id)
        .where(ObjectiveReport.objective_id == scenario.objective_id)
    ).one()
    link.url = "javascript:alert(1)"
    session.add(link)
    session.commit()
    [objective] = load_request_view(session, scenario.request_id).objectives
    [shown] = objective.last_achievements[0].links
    assert (shown.title, shown.url) == ("Training report", None)
