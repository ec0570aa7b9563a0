"""``trusted``: the fast constructor compile uses for rows read back from the database makes
the same objects as pydantic's validation, and refuses a half-built one."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from models.document import (
    ActionLine,
    Block,
    Link,
    MilestoneLine,
    ReportDocument,
    Revision,
    _Model,
)

LINK = {"title": "Guidance (PDF)", "url": "https://example.govt.nz/g.pdf", "site": "MBIE"}
REVISION = {
    "year": 2021,
    "previous": "Q3 2021",
    "new": "Quarter 2 2022",
    "reason": "Consultation ran long",
    "changed_by": "anna@mbie.govt.nz",
}
CASES: list[tuple[type[_Model], dict[str, Any]]] = [
    (Link, LINK),
    (Revision, REVISION),
    (
        ActionLine,
        {"number": "N1", "text": "Māori & Pacific", "footnoted": True, "incorporated_into": None},
    ),
    (
        Block,
        {
            "text": "Training <delivered>",
            "style": "bullet",
            "links": [Link.model_validate(LINK)],
            "agency": "INZ",
            "not_updated": True,
            "entry_id": 7,
        },
    ),
    (
        MilestoneLine,
        {
            "text": "Migrant worker protection bill introduced",
            "due": "Quarter 2 2022",
            "start": date(2022, 4, 1),
            "end": date(2022, 6, 30),
            "delayed_from": "Q3 2021",
            "lead": "MBIE",
            "status": "delayed",
            "links": [],
            "history": [Revision.model_validate(REVISION)],
            "not_updated": False,
            "milestone_id": 3,
            "entry_id": 9,
        },
    ),
]


@pytest.mark.parametrize(("model", "values"), CASES, ids=[m.__name__ for m, _v in CASES])
def test_trusted_makes_what_validation_makes(model: type[_Model], values: dict[str, Any]) -> None:
    fast = model.trusted(dict(values))
    checked = model.model_validate(values)
    assert fast == checked
    assert fast.model_dump_json() == checked.model_dump_json()
    assert fast.model_fields_set == checked.model_fields_set
    # Still an ordinary model: assignment works and is seen by serialisation.
    first = next(iter(values))
    setattr(fast, first, getattr(checked, first))
    assert fast.model_dump() == checked.model_dump()


def test_trusted_refuses_missing_or_unknown_fields() -> None:
    with pytest.raises(AssertionError, match="Link"):
        Link.trusted({"title": "no url or site"})
    with pytest.raises(AssertionError, match="Link"):
        Link.trusted({**LINK, "extra": 1})


def test_a_document_of_trusted_parts_round_trips_through_json() -> None:
    doc = ReportDocument(title="Plan of Action", year=2021)
    line = MilestoneLine.trusted(dict(CASES[-1][1]))
    doc_json = doc.model_copy(update={"intro": [Block.trusted(dict(CASES[3][1]))]})
    doc_json.intro[0].links.append(Link.trusted(dict(LINK)))
    rebuilt = ReportDocument.model_validate_json(doc_json.model_dump_json())
    assert rebuilt == doc_json
    assert MilestoneLine.model_validate_json(line.model_dump_json()) == line
