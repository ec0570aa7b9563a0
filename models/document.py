"""A year's report as a plain document: what the importer reads, what compile builds from the
database, what every renderer (txt, md, html, docx, csv) writes, and what a report version
freezes as JSON. No database here."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

Style = Literal["bullet", "paragraph"]

NONE_IDENTIFIED = "None identified at this stage."


class _Model(BaseModel):
    model_config = ConfigDict(frozen=False, extra="forbid")

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Self:
        """An instance from values already valid, with every field given (rows read back from
        the database): what ``model_construct`` makes, without its per-field default and alias
        handling, which costs several times more than the object itself when a compile makes
        25,000 of them. ``tests/test_document.py`` checks it equals ``model_validate``."""
        # Every field given, none unknown: a cheap guard against a half-built instance.
        assert len(values) == _field_count(cls), (cls.__name__, sorted(values))
        instance = _new(cls)
        _set(instance, "__dict__", values)
        # BaseModel's own slots, set through their descriptors: a third cheaper than
        # object.__setattr__ by name, which looks each one up on the class first.
        _set_fields_set(instance, set(values))
        _set_extra(instance, None)
        _set_private(instance, None)
        return instance


_new = object.__new__
_set = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_FIELD_COUNTS: dict[type[BaseModel], int] = {}


def _field_count(cls: type[BaseModel]) -> int:
    # ``model_fields`` is a property that costs more than the check it serves: ask once.
    count = _FIELD_COUNTS.get(cls)
    if count is None:
        count = _FIELD_COUNTS[cls] = len(cls.model_fields)
    return count


class Link(_Model):
    title: str
    url: str | None = None
    site: str | None = None


class Block(_Model):
    """A paragraph or a bullet of free text (introduction, achievements, further work)."""

    text: str
    style: Style = "bullet"
    links: list[Link] = Field(default_factory=list)
    # Who wrote it (an agency acronym), where known.
    agency: str | None = None
    # Set on entries carried forward from last year because the agency did not answer.
    not_updated: bool = False
    entry_id: int | None = None


class Revision(_Model):
    year: int
    previous: str | None
    new: str | None
    reason: str | None = None
    changed_by: str | None = None


class MilestoneLine(_Model):
    text: str
    due: str | None = None
    start: date | None = None
    end: date | None = None
    delayed_from: str | None = None
    lead: str | None = None
    status: str = "planned"
    links: list[Link] = Field(default_factory=list)
    history: list[Revision] = Field(default_factory=list)
    not_updated: bool = False
    milestone_id: int | None = None
    entry_id: int | None = None


class ActionLine(_Model):
    number: str
    text: str
    footnoted: bool = False
    incorporated_into: str | None = None


class ActiveAgency(_Model):
    name: str
    acronym: str


class ObjectiveSection(_Model):
    title: str
    actions: list[ActionLine] = Field(default_factory=list)
    actions_footnote: str | None = None
    # None when the objective has no report for the year.
    year: int | None = None
    active_agencies: list[ActiveAgency] = Field(default_factory=list)
    intro: str | None = None
    achievements: list[Block] = Field(default_factory=list)
    further_work: list[Block] = Field(default_factory=list)
    milestones: list[MilestoneLine] = Field(default_factory=list)


class PillarSection(_Model):
    name: str
    objectives: list[ObjectiveSection] = Field(default_factory=list)


class ReportDocument(_Model):
    title: str
    year: int
    intro: list[Block] = Field(default_factory=list)
    pillars: list[PillarSection] = Field(default_factory=list)
    last_updated: date | None = None

    def objectives(self) -> list[ObjectiveSection]:
        return [objective for pillar in self.pillars for objective in pillar.objectives]

    def canonical_json(self) -> str:
        return self.model_dump_json(exclude_none=False)

    def checksum(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()
