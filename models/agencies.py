"""Knowing agencies: the bundled directory of a plan's agencies, and finding the agency a
piece of text is about ("Police plan to…" → NZP, "INZ will…" → INZ)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DIRECTORY_PATH = Path(__file__).parent / "data" / "agencies-nz.toml"


@dataclass(frozen=True)
class AgencyInfo:
    acronym: str
    full_name: str
    aliases: tuple[str, ...] = ()
    parent: str | None = None


@dataclass
class AgencyDirectory:
    """Agencies by acronym. Later entries add names to earlier ones, never replace them."""

    agencies: dict[str, AgencyInfo] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = DIRECTORY_PATH) -> AgencyDirectory:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        directory = cls()
        for entry in data.get("agency", []):
            directory.add(
                AgencyInfo(
                    acronym=entry["acronym"],
                    full_name=entry["full_name"],
                    aliases=tuple(entry.get("aliases", ())),
                    parent=entry.get("parent"),
                )
            )
        return directory

    def add(self, info: AgencyInfo) -> None:
        known = self.agencies.get(info.acronym)
        if known is None:
            self.agencies[info.acronym] = info
            return
        names = [*known.aliases]
        for name in (info.full_name, *info.aliases):
            if name != known.full_name and name not in names:
                names.append(name)
        self.agencies[info.acronym] = AgencyInfo(
            known.acronym, known.full_name, tuple(names), known.parent or info.parent
        )

    def get(self, acronym: str) -> AgencyInfo | None:
        return self.agencies.get(acronym)

    def matcher(self) -> AgencyMatcher:
        return AgencyMatcher(self.agencies.values())


class AgencyMatcher:
    """Finds the first agency a text mentions, by acronym (case-sensitive, whole word) or by
    any of its names (case-insensitive)."""

    def __init__(self, agencies: Iterable[AgencyInfo]) -> None:
        self._acronyms: dict[str, str] = {}
        self._names: dict[str, str] = {}
        alternatives: list[tuple[str, str]] = []
        for info in agencies:
            self._acronyms.setdefault(info.acronym, info.acronym)
            alternatives.append((info.acronym, re.escape(info.acronym)))
            for name in (info.full_name, *info.aliases):
                self._names.setdefault(name.casefold(), info.acronym)
                alternatives.append((name, "(?i:" + re.escape(name) + ")"))
        # Longest first, so "NZ Police" wins over "Police" at the same position. One group
        # and a dictionary lookup of the matched text: hundreds of named groups made every
        # match slow on a plan of 200 agencies.
        alternatives.sort(key=lambda item: len(item[0]), reverse=True)
        pattern = "|".join(regex for _, regex in alternatives)
        self._pattern = re.compile(rf"(?<![\w-])({pattern})(?![\w])") if pattern else None

    def _owner(self, matched: str) -> str:
        return self._acronyms.get(matched) or self._names[matched.casefold()]

    def find(self, text: str) -> str | None:
        found = self.find_all(text)
        return found[0] if found else None

    def find_all(self, text: str) -> list[str]:
        """Every agency the text names, in order of first mention."""
        if self._pattern is None:
            return []
        found: list[str] = []
        for match in self._pattern.finditer(text):
            acronym = self._owner(match.group(1))
            if acronym not in found:
                found.append(acronym)
        return found
