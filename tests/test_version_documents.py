"""A stored version's document is read once per process and shared by the pages that open it
again (``drafts.version_document`` and its small cache), on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session

from models import drafts
from models.document import ReportDocument
from models.drafts import versioning
from models.tables import ReportVersion
from tests.review_helpers import ANSWERED, COORDINATOR, complete_answer, open_2022, submit


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    versioning._documents.clear()
    yield
    versioning._documents.clear()


def _stored(session: Session, version: ReportVersion) -> ReportDocument:
    session.refresh(version)
    return ReportDocument.model_validate(version.content)


def test_a_version_opened_again_is_the_same_document(
    session: Session, report_2021_text: str
) -> None:
    c = open_2022(session, report_2021_text)
    first = drafts.compile_cycle(session, c.cycle, ANSWERED, COORDINATOR)
    submit(session, c.requests["MBIE"], complete_answer(session, c.requests["MBIE"]))
    second = drafts.compile_cycle(session, c.cycle, ANSWERED + timedelta(days=1), COORDINATOR)
    session.commit()
    session.expunge_all()

    listed = drafts.versions(session, c.cycle)  # content deferred: read on opening
    assert [v.number for v in listed] == [first.number, second.number]
    one = drafts.version_document(listed[0])
    two = drafts.version_document(listed[1])
    assert one is not two and one != two
    assert one == _stored(session, listed[0]) and two == _stored(session, listed[1])

    session.expunge_all()
    again = drafts.versions(session, c.cycle)
    assert drafts.version_document(again[0]) is one
    assert drafts.version_document(again[1]) is two
    latest = drafts.latest_version(session, c.cycle)
    assert latest is not None and drafts.version_document(latest) is two


def test_the_cache_keeps_the_most_recently_used() -> None:
    cache = versioning._DocumentCache()
    documents = {n: ReportDocument(title=f"Plan {n}", year=2022) for n in range(5)}
    for n in range(cache.SIZE):
        cache.put(("db", n, "sum"), documents[n])
    assert cache.get(("db", 0, "sum")) is documents[0]  # now the most recent
    cache.put(("db", 3, "sum"), documents[3])  # the least recent (1) goes
    assert cache.get(("db", 1, "sum")) is None
    assert cache.get(("db", 0, "sum")) is documents[0]
    assert cache.get(("db", 3, "sum")) is documents[3]
    # The checksum and the database are part of the key.
    assert cache.get(("db", 3, "other")) is None
    assert cache.get(("other-db", 3, "sum")) is None
