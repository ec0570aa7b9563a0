"""Compiling the 2022 cycle on the imported 2021 report into draft versions (both backends),
and the coordinator's edits to the draft."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, col, select

from models import drafts
from models.answers import MilestoneAnswer, MilestoneProgress
from models.compiler import build_document
from models.document import Block, MilestoneLine, ObjectiveSection, ReportDocument
from models.drafts.storage import annual_report
from models.drafts.working import load_drafts
from models.render import Format, render
from models.tables import (
    AuditEvent,
    EntryOrigin,
    MilestoneRevision,
    MilestoneStatus,
    ObjectiveReport,
    ReportEntry,
    ReportVersion,
    Section,
    VersionState,
)
from tests.review_helpers import (
    AEWV,
    ANSWERED,
    COORDINATOR,
    Cycle2022,
    complete_answer,
    objective_ids,
    open_2022,
    submit,
)

LATER = ANSWERED + timedelta(days=3)
MBIE_ACHIEVEMENT = "Forced labour guidance for employers published in te reo Māori & English."
MBIE_FURTHER = "Evaluate the reach of the <new> guidance."


@pytest.fixture
def c(session: Session, report_2021_text: str) -> Cycle2022:
    return open_2022(session, report_2021_text)


def objective_of(doc: ReportDocument, objective_id: int, session: Session) -> ObjectiveSection:
    from models.tables import Objective

    objective = session.get(Objective, objective_id)
    assert objective is not None
    return next(o for o in doc.objectives() if o.title == objective.title)


def mbie_answers(session: Session, c: Cycle2022, *, achievement: str = MBIE_ACHIEVEMENT) -> None:
    """MBIE: the visa delayed again, the first milestone of objective 1 completed, the second
    no longer planned; an achievement and further work on objective 1."""
    first_objective = objective_ids(session, c.requests["MBIE"])[0]
    aewv = c.milestone(AEWV)
    published = c.milestone("Information about migrant exploitation")
    strategy = c.milestone("MBIE’s people trafficking communications strategy")
    answer = complete_answer(
        session,
        c.requests["MBIE"],
        progress={
            aewv.id or 0: MilestoneAnswer(
                milestone_id=aewv.id or 0,
                progress=MilestoneProgress.DELAYED,
                new_period="Quarter 2 2023",
                reason="System build took longer.",
            ),
            published.id or 0: MilestoneAnswer(
                milestone_id=published.id or 0,
                progress=MilestoneProgress.COMPLETED,
                completed_on=date(2022, 3, 1),
                achievement="Migrant exploitation information published on the MBIE website.",
            ),
            strategy.id or 0: MilestoneAnswer(
                milestone_id=strategy.id or 0,
                progress=MilestoneProgress.DROPPED,
                reason="Replaced by the all-of-government strategy.",
            ),
        },
        achievements=[(first_objective, achievement)],
        further_work=[(first_objective, MBIE_FURTHER)],
        link=("Guidance", "https://www.employment.govt.nz/guidance"),
    )
    submit(session, c.requests["MBIE"], answer, author="kahu@mbie.govt.nz")


def test_a_delay_chain_of_two_revisions_prints_the_first_baseline(
    session: Session, c: Cycle2022
) -> None:
    mbie_answers(session, c)
    aewv = c.milestone(AEWV)
    history = session.exec(
        select(MilestoneRevision)
        .where(MilestoneRevision.milestone_id == aewv.id)
        .order_by(col(MilestoneRevision.sequence))
    ).all()
    assert [(r.year, r.previous_due_text, r.new_due_text) for r in history] == [
        (2021, "2021", "July 2022"),
        (2022, "July 2022", "Quarter 2 2023"),
    ]

    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)

    doc = drafts.version_document(version)
    lines = [m for o in doc.objectives() for m in o.milestones if m.milestone_id == aewv.id]
    assert len(lines) == 1
    assert (lines[0].due, lines[0].delayed_from) == ("Quarter 2 2023", "2021")
    text = render(doc, Format.TXT).decode()
    assert (
        "- Quarter 2 2023 – Accredited Employer Work Visa to be introduced "
        "(Delayed from 2021)." in text
    )
    # Last year's report still reads as published.
    last_year = render(build_document(session, c.plan.id or 0, 2021), Format.TXT).decode()
    assert "July 2022 – Accredited Employer Work Visa to be introduced (Delayed from 2021)." in (
        last_year
    )


def test_an_agency_that_did_not_answer_keeps_last_years_entries_marked(
    session: Session, c: Cycle2022
) -> None:
    mbie_answers(session, c)
    last_doc = build_document(session, c.plan.id or 0, 2021)
    # An objective where other agencies wrote entries in 2021 (MFAT and OT do not answer).
    shared = next(
        o
        for o in last_doc.objectives()
        if any(b.agency not in (None, "MBIE") for b in o.achievements)
    )
    others = [b for b in shared.achievements if b.agency != "MBIE"]
    mbie_old = [b for b in [*shared.achievements, *shared.further_work] if b.agency == "MBIE"]
    assert others and mbie_old, "the 2021 report has entries of several agencies here"

    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)

    doc = drafts.version_document(version)
    section = next(o for o in doc.objectives() if o.title == shared.title)
    texts = {b.text: b for b in section.achievements}
    for block in others:
        carried = texts[block.text]
        assert carried.not_updated and carried.agency == block.agency
        assert carried.links == block.links
    # MBIE answered for this objective (its milestones' progress): its old entries go.
    kept = {b.text for b in [*section.achievements, *section.further_work]}
    assert not any(b.text in kept for b in mbie_old)
    assert [a.acronym for a in section.active_agencies] == ["MBIE"]

    first = objective_of(doc, objective_ids(session, c.requests["MBIE"])[0], session)
    mine = {b.text: b for b in first.achievements}[MBIE_ACHIEVEMENT]
    assert (mine.agency, mine.not_updated) == ("MBIE", False)
    assert [(link.title, link.url) for link in mine.links] == [
        ("Guidance", "https://www.employment.govt.nz/guidance")
    ]
    assert [b.text for b in first.further_work if b.agency == "MBIE"] == [MBIE_FURTHER]

    rows = session.exec(
        select(ReportEntry).where(col(ReportEntry.origin) == EntryOrigin.CARRIED_FORWARD)
    ).all()
    assert rows and all(row.not_updated for row in rows)
    html = render(doc, Format.HTML).decode()
    assert html.count('class="badge not-updated"') >= len(others)
    md = render(doc, Format.MD).decode()
    assert "**\\[Not updated\\]**" in md


def test_an_objective_nobody_answered_reads_as_last_year_marked(
    session: Session, c: Cycle2022
) -> None:
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    doc = drafts.version_document(version)
    last = build_document(session, c.plan.id or 0, 2021)
    for before, now in zip(last.objectives(), doc.objectives(), strict=True):
        assert [a.acronym for a in now.active_agencies] == [
            a.acronym for a in before.active_agencies
        ]
        assert [b.text for b in now.achievements] == [b.text for b in before.achievements]
        assert all(b.not_updated for b in [*now.achievements, *now.further_work])


def test_completed_milestones_are_offered_as_achievements(session: Session, c: Cycle2022) -> None:
    mbie_answers(session, c)
    published = c.milestone("Information about migrant exploitation")
    first_objective = objective_ids(session, c.requests["MBIE"])[0]

    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)

    section = objective_of(drafts.version_document(version), first_objective, session)
    offered = [
        b
        for b in section.achievements
        if b.text == "Migrant exploitation information published on the MBIE website."
    ]
    assert len(offered) == 1 and offered[0].agency == "MBIE"
    assert published.id not in {m.milestone_id for m in section.milestones}
    notes = drafts.review_notes(session, c.cycle)
    assert offered[0].entry_id is not None
    assert notes.entries[offered[0].entry_id].offered_milestone == published.id
    assert notes.offered == 1


def test_a_completed_milestone_offered_as_an_achievement_keeps_its_link(
    session: Session, c: Cycle2022
) -> None:
    # 2021: "July 2022 – Accredited Employer Work Visa to be introduced (Delayed from 2021)."
    # followed by "New employer accreditation and work visa(external link) — Immigration.govt.nz"
    aewv = c.milestone(AEWV)
    mbie = c.requests["MBIE"]
    answer = complete_answer(
        session,
        mbie,
        progress={
            aewv.id or 0: MilestoneAnswer(
                milestone_id=aewv.id or 0,
                progress=MilestoneProgress.COMPLETED,
                completed_on=date(2022, 7, 4),
                achievement="The Accredited Employer Work Visa was introduced.",
            )
        },
    )
    submit(session, mbie, answer, author="kahu@mbie.govt.nz")

    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)

    section = objective_of(drafts.version_document(version), aewv.objective_id, session)
    [offered] = [b for b in section.achievements if b.text.startswith("The Accredited Employer")]
    assert [(link.title, link.site) for link in offered.links] == [
        ("New employer accreditation and work visa", "Immigration.govt.nz")
    ]
    text = render(drafts.version_document(version), Format.TXT).decode()
    assert (
        "- The Accredited Employer Work Visa was introduced.\n"
        "New employer accreditation and work visa(external link) — Immigration.govt.nz\n"
    ) in text
    # Compiling again changes nothing.
    assert drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR).number == version.number


def test_milestones_no_longer_planned_are_listed_for_the_coordinator(
    session: Session, c: Cycle2022
) -> None:
    mbie_answers(session, c)
    strategy = c.milestone("MBIE’s people trafficking communications strategy")
    assert strategy.status is MilestoneStatus.DROPPED

    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)

    doc = drafts.version_document(version)
    assert strategy.id not in {m.milestone_id for o in doc.objectives() for m in o.milestones}
    notes = drafts.review_notes(session, c.cycle)
    assert [(d.milestone_id, d.agency, d.reason) for d in notes.dropped] == [
        (strategy.id, "MBIE", "Replaced by the all-of-government strategy.")
    ]
    assert notes.answered == ["MBIE"]
    assert "NZP" in notes.not_answered and "MBIE" not in notes.not_answered


def test_upcoming_milestones_are_sorted_by_due_period_undated_last(
    session: Session, c: Cycle2022
) -> None:
    mbie_answers(session, c)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    for objective in drafts.version_document(version).objectives():
        keys = [_due_key(m) for m in objective.milestones]
        assert keys == sorted(keys), objective.title


def _due_key(line: MilestoneLine) -> tuple[bool, date, date]:
    return (line.start is None, line.start or date.max, line.end or date.max)


def test_each_compile_is_a_new_version_and_every_version_renders_from_its_content(
    session: Session, c: Cycle2022
) -> None:
    first = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    first_content = dict(first.content)
    again = drafts.compile_cycle(session, c.cycle, LATER + timedelta(hours=1), COORDINATOR)
    assert again.id == first.id, "nothing changed: no new version"

    mbie_answers(session, c)
    second = drafts.compile_cycle(session, c.cycle, LATER + timedelta(days=1), COORDINATOR)

    assert (first.number, second.number) == (1, 2)
    session.refresh(first)
    assert first.content == first_content, "an earlier version is never overwritten"
    assert [v.number for v in drafts.versions(session, c.cycle)] == [1, 2]
    for version in (first, second):
        doc = ReportDocument.model_validate(version.content)
        assert doc.checksum() == version.checksum
        for fmt in Format:
            assert render(doc, fmt), fmt
    assert MBIE_ACHIEVEMENT in render(drafts.version_document(second), "txt").decode()
    assert MBIE_ACHIEVEMENT not in render(drafts.version_document(first), "txt").decode()
    events = session.exec(
        select(AuditEvent)
        .where(AuditEvent.cycle_id == c.cycle.id, AuditEvent.action == drafts.COMPILED)
        # In the order written: without it PostgreSQL may return them in any order.
        .order_by(col(AuditEvent.id))
    ).all()
    assert [e.detail["version"] for e in events] == [1, 1, 2]


def test_a_compiled_version_is_the_document_read_back_from_the_database(
    session: Session, c: Cycle2022
) -> None:
    """Compile builds the version from the rows it has just written (not read back): it must
    be byte for byte what ``build_document`` reads from the database, entry ids included, when
    every objective is written, when only some are, and after a coordinator's edit."""

    def assert_read_back(version: ReportVersion) -> None:
        stored = build_document(session, c.plan.id or 0, 2022)
        assert version.checksum == stored.checksum()
        assert version.content == stored.model_dump(mode="json")

    assert_read_back(drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR))
    mbie_answers(session, c)
    second = drafts.compile_cycle_result(session, c.cycle, LATER + timedelta(days=1), COORDINATOR)
    assert second.created and second.objective_reports_written > 0
    assert_read_back(second.version)
    _objective, block = _block(drafts.version_document(second.version), MBIE_ACHIEVEMENT)
    assert block.entry_id is not None and block.links
    drafts.move_entry(session, c.cycle, block.entry_id, "further_work", LATER, "ana@x.nz")
    third = drafts.compile_cycle_result(session, c.cycle, LATER + timedelta(days=2), COORDINATOR)
    assert not third.created
    assert_read_back(third.version)


def _block(doc: ReportDocument, text: str) -> tuple[ObjectiveSection, Block]:
    for objective in doc.objectives():
        for block in [*objective.achievements, *objective.further_work]:
            if block.text == text:
                return objective, block
    raise AssertionError(f"no entry {text!r}")


def test_a_coordinator_edit_is_an_attributed_revision_kept_by_a_recompile(
    session: Session, c: Cycle2022
) -> None:
    mbie_answers(session, c)
    draft = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    _objective, block = _block(drafts.version_document(draft), MBIE_ACHIEVEMENT)
    assert block.entry_id is not None

    edited = drafts.edit_entry(
        session, c.cycle, block.entry_id, "Guidance published in two languages.", LATER, "ana@x.nz"
    )

    assert edited.number == draft.number + 1 and edited.state is VersionState.DRAFT
    _objective, after = _block(
        drafts.version_document(edited), "Guidance published in two languages."
    )
    assert after.agency == "MBIE"
    row = session.get(ReportEntry, after.entry_id)
    assert row is not None and (row.origin, row.updated_by) == (EntryOrigin.COORDINATOR, "ana@x.nz")
    event = session.exec(select(AuditEvent).where(AuditEvent.action == drafts.EDITED)).one()
    assert (event.actor, event.detail["previous_text"], event.detail["new_text"]) == (
        "ana@x.nz",
        MBIE_ACHIEVEMENT,
        "Guidance published in two languages.",
    )

    # A recompile of the same answers keeps the edit (and makes no new version).
    recompiled = drafts.compile_cycle(session, c.cycle, LATER + timedelta(hours=2), COORDINATOR)
    assert recompiled.id == edited.id

    # The agency changes that achievement: its new answer wins, the edit is stale.
    session.refresh(c.requests["MBIE"])
    from models.submissions import reopen

    reopen(session, c.requests["MBIE"].id or 0, author="kahu@mbie.govt.nz", now=LATER)
    mbie_answers(session, c, achievement="Guidance for employers published and promoted.")
    third = drafts.compile_cycle_result(session, c.cycle, LATER + timedelta(days=1), COORDINATOR)
    text = render(drafts.version_document(third.version), "txt").decode()
    assert "Guidance for employers published and promoted." in text
    assert "Guidance published in two languages." not in text
    assert third.stale_edits == [event.id]
    assert drafts.review_notes(session, c.cycle).stale_edits == [event.id]


def test_moving_and_removing_entries(session: Session, c: Cycle2022) -> None:
    mbie_answers(session, c)
    doc = drafts.version_document(drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR))
    objective, block = _block(doc, MBIE_ACHIEVEMENT)
    index = [b.text for b in objective.achievements].index(MBIE_ACHIEVEMENT)
    assert index < len(objective.achievements) - 1

    down = drafts.move_entry(session, c.cycle, block.entry_id or 0, "down", LATER, "ana@x.nz")
    objective, block = _block(drafts.version_document(down), MBIE_ACHIEVEMENT)
    assert [b.text for b in objective.achievements].index(MBIE_ACHIEVEMENT) == index + 1

    up = drafts.move_entry(session, c.cycle, block.entry_id or 0, "up", LATER, "ana@x.nz")
    objective, block = _block(drafts.version_document(up), MBIE_ACHIEVEMENT)
    assert [b.text for b in objective.achievements].index(MBIE_ACHIEVEMENT) == index

    moved = drafts.move_entry(
        session, c.cycle, block.entry_id or 0, "further_work", LATER, "ana@x.nz"
    )
    objective, block = _block(drafts.version_document(moved), MBIE_ACHIEVEMENT)
    assert MBIE_ACHIEVEMENT in [b.text for b in objective.further_work]
    assert MBIE_ACHIEVEMENT not in [b.text for b in objective.achievements]

    removed = drafts.remove_entry(session, c.cycle, block.entry_id or 0, LATER, "ana@x.nz")
    assert MBIE_ACHIEVEMENT not in render(drafts.version_document(removed), "txt").decode()
    assert [v.number for v in drafts.versions(session, c.cycle)] == [1, 2, 3, 4, 5]

    # The moves and the removal survive a recompile.
    again = drafts.compile_cycle(session, c.cycle, LATER + timedelta(hours=1), COORDINATOR)
    assert again.id == removed.id

    with pytest.raises(drafts.DraftError, match="not a move"):
        drafts.move_entry(session, c.cycle, block.entry_id or 0, "sideways", LATER, "ana@x.nz")
    milestone_entry = drafts.version_document(again).objectives()[0].milestones[0].entry_id
    assert milestone_entry is not None
    with pytest.raises(drafts.DraftError, match="milestones take their text"):
        drafts.edit_entry(session, c.cycle, milestone_entry, "x", LATER, "ana@x.nz")
    last_year = build_document(session, c.plan.id or 0, 2021).objectives()[0].achievements[0]
    with pytest.raises(drafts.DraftError, match="not in the 2022 draft"):
        drafts.edit_entry(session, c.cycle, last_year.entry_id or 0, "x", LATER, "ana@x.nz")


def test_versions_are_numbered_per_year(session: Session, c: Cycle2022) -> None:
    drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    rows = session.exec(select(ReportVersion)).all()
    assert [v.number for v in rows] == [1]


def test_two_compiles_at_once_make_one_version(db_url: str, report_2021_text: str) -> None:
    """Two processes compiling the same answers at the same moment (the beat and a
    coordinator's button): one waits for the other and finds the draft unchanged."""
    import threading

    from models.db import make_engine, upgrade
    from models.tables import Cycle

    engine = make_engine(db_url)
    upgrade(engine)
    try:
        with Session(engine, expire_on_commit=False) as setup:
            c = open_2022(setup, report_2021_text)
            mbie_answers(setup, c)
            setup.commit()
            cycle_id = c.cycle.id
        barrier = threading.Barrier(2)
        numbers: list[int] = []
        errors: list[BaseException] = []

        def compile_now(actor: str) -> None:
            try:
                with Session(engine, expire_on_commit=False) as session:
                    cycle = session.get(Cycle, cycle_id)
                    assert cycle is not None
                    barrier.wait(timeout=30)
                    numbers.append(drafts.compile_cycle(session, cycle, LATER, actor).number)
                    session.commit()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=compile_now, args=(a,)) for a in ("beat", "ana")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert numbers == [1, 1]
        with Session(engine) as session:
            assert [v.number for v in session.exec(select(ReportVersion))] == [1]
            compiled = session.exec(
                select(AuditEvent).where(AuditEvent.action == drafts.COMPILED)
            ).all()
            assert sorted(e.actor for e in compiled) == ["ana", "beat"]
    finally:
        engine.dispose()


def test_entry_text_that_looks_like_copy_syntax_is_written_as_given(
    session: Session, c: Cycle2022
) -> None:
    r"""PostgreSQL writes a compile's entries with COPY, whose text format gives \N, backslashes
    and tabs meanings of their own: an agency's words must come back exactly as written."""
    tricky = 'Hui in Tāmaki Makaurau: \\N is not NULL, C:\\temp\\new, "quoted"\tand tabbed.'
    mbie_answers(session, c, achievement=tricky)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    _objective, block = _block(drafts.version_document(version), tricky)
    assert block.agency == "MBIE"
    stored = build_document(session, c.plan.id or 0, 2022)
    assert tricky in [b.text for o in stored.objectives() for b in o.achievements]


def _reports(session: Session, c: Cycle2022) -> dict[int, ObjectiveReport]:
    annual = annual_report(session, c.cycle, LATER)
    return {
        r.objective_id: r
        for r in session.exec(
            select(ObjectiveReport).where(ObjectiveReport.annual_report_id == annual.id)
        ).all()
    }


def _entry_ids(session: Session) -> list[int]:
    return sorted(e.id or 0 for e in session.exec(select(ReportEntry)).all())


def test_each_written_report_records_the_digest_of_its_rows(session: Session, c: Cycle2022) -> None:
    drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    mbie_answers(session, c)
    drafts.compile_cycle(session, c.cycle, LATER + timedelta(days=1), COORDINATOR)
    reports = _reports(session, c)
    annual = annual_report(session, c.cycle, LATER)
    read_back = load_drafts(session, annual.id or 0)
    assert reports and set(read_back) == set(reports)
    for objective_id, report in reports.items():
        assert report.draft_digest == read_back[objective_id].digest(), objective_id


@pytest.mark.parametrize("digest", [None, "0" * 64], ids=["missing", "stale"])
def test_a_missing_or_stale_digest_is_compared_by_its_rows_and_recorded(
    session: Session, c: Cycle2022, digest: str | None
) -> None:
    first = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    ids = _entry_ids(session)
    reports = _reports(session, c)
    for report in reports.values():
        report.draft_digest = digest
        session.add(report)
    session.flush()

    again = drafts.compile_cycle_result(session, c.cycle, LATER + timedelta(days=1), COORDINATOR)
    # The rows equal the draft: nothing rewritten, no new version, the digests recorded.
    assert (again.created, again.objective_reports_written) == (False, 0)
    assert again.version.id == first.id
    assert _entry_ids(session) == ids
    session.expire_all()
    assert all(r.draft_digest not in (None, digest) for r in _reports(session, c).values())


def test_rows_that_no_longer_match_their_digest_are_rewritten(
    session: Session, c: Cycle2022
) -> None:
    """A digest vouches for rows nobody else changed; rows that changed under it (here one
    removed by hand) are found by their count, compared and written again."""
    drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    reports = _reports(session, c)
    victim = session.exec(
        select(ReportEntry).where(
            col(ReportEntry.objective_report_id).in_([r.id for r in reports.values()]),
            ReportEntry.section == Section.MILESTONE,
        )
    ).first()
    assert victim is not None
    session.delete(victim)
    session.flush()

    again = drafts.compile_cycle_result(session, c.cycle, LATER + timedelta(days=1), COORDINATOR)
    assert again.objective_reports_written == 1
    stored = build_document(session, c.plan.id or 0, 2022)
    assert again.version.checksum == stored.checksum()
    assert victim.milestone_id in [
        m.milestone_id for o in stored.objectives() for m in o.milestones
    ]


def test_an_import_over_the_draft_clears_its_digest_and_the_compile_puts_the_answers_back(
    session: Session, c: Cycle2022
) -> None:
    from models.importer import import_report

    mbie_answers(session, c)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    text = render(drafts.version_document(version), Format.TXT).decode()
    assert MBIE_ACHIEVEMENT in text
    import_report(session, text.replace(MBIE_ACHIEVEMENT, "Imported over the draft."), LATER)
    session.flush()
    # Every report the import rewrote (the edited one among them) loses its digest.
    cleared = [o for o, r in _reports(session, c).items() if r.draft_digest is None]
    assert objective_ids(session, c.requests["MBIE"])[0] in cleared

    again = drafts.compile_cycle_result(session, c.cycle, LATER + timedelta(days=1), COORDINATOR)
    assert 1 <= again.objective_reports_written <= len(cleared)
    stored = build_document(session, c.plan.id or 0, 2022)
    assert again.version.checksum == stored.checksum()
    achievements = [b.text for o in stored.objectives() for b in o.achievements]
    assert MBIE_ACHIEVEMENT in achievements and "Imported over the draft." not in achievements


def test_memoized_bind_processors_keep_equal_instants_in_other_zones_apart() -> None:
    """Writing the draft converts each distinct value once; an equal instant in another zone
    is another value to SQLite's DATETIME (its wall-clock time is what is stored)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    from models.drafts.storage import _memoized

    dialect = sqlite.dialect()
    processor = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    convert = _memoized(processor)
    utc = datetime(2022, 2, 1, 0, 0, tzinfo=UTC)
    auckland = utc.astimezone(ZoneInfo("Pacific/Auckland"))
    assert utc == auckland
    assert [convert(utc), convert(auckland), convert(utc)] == [
        processor(utc),
        processor(auckland),
        processor(utc),
    ]
    assert convert(utc) != convert(auckland)
