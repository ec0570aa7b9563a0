"""Render a ReportDocument as txt (the published text format), md, html, docx or csv."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from enum import StrEnum

from models.document import NONE_IDENTIFIED, ActionLine, ActiveAgency, MilestoneLine, ReportDocument
from templates import environment


class Format(StrEnum):
    TXT = "txt"
    MD = "md"
    HTML = "html"
    DOCX = "docx"
    CSV = "csv"


def action_line(action: ActionLine) -> str:
    marker = "*" if action.footnoted else ""
    if action.incorporated_into:
        return (
            f"{action.number}{marker}. Action {action.number} has been incorporated into "
            f"Action {action.incorporated_into}.({action.text})"
        )
    return f"{action.number}{marker}. {action.text}"


def agency_label(agency: ActiveAgency) -> str:
    return f"{agency.name} ({agency.acronym})"


def milestone_text(milestone: MilestoneLine) -> str:
    """The milestone's text with its "(Delayed from …)" note before the final full stop."""
    text = milestone.text
    if not milestone.delayed_from:
        return text
    note = f"(Delayed from {milestone.delayed_from})"
    if text.endswith("."):
        return f"{text[:-1]} {note}."
    return f"{text} {note}"


def milestone_line(milestone: MilestoneLine) -> str:
    text = milestone_text(milestone)
    return f"{milestone.due} – {text}" if milestone.due else text


def long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def template_context(doc: ReportDocument) -> dict[str, object]:
    return {"doc": doc, "none_identified": NONE_IDENTIFIED}


def _register_filters() -> None:
    env = environment()
    env.filters.update(
        action_line=action_line,
        agency_label=agency_label,
        milestone_text=milestone_text,
        milestone_line=milestone_line,
        long_date=long_date,
    )


def render_template(doc: ReportDocument, fmt: Format) -> str:
    _register_filters()
    template = environment().get_template(f"report/report.{fmt.value}")
    return template.render(**template_context(doc))


def render(doc: ReportDocument, fmt: Format | str) -> bytes:
    """The report in ``fmt``, as the bytes of the file to write."""
    fmt = Format(fmt)
    renderer = _RENDERERS.get(fmt)
    if renderer is not None:
        return renderer(doc)
    return render_template(doc, fmt).encode("utf-8")


def _binary_renderers() -> dict[Format, Callable[[ReportDocument], bytes]]:
    renderers: dict[Format, Callable[[ReportDocument], bytes]] = {}
    try:
        from models.render_docx import render_docx

        renderers[Format.DOCX] = render_docx
    except ImportError:  # pragma: no cover - during development only
        pass
    try:
        from models.render_csv import render_csv

        renderers[Format.CSV] = render_csv
    except ImportError:  # pragma: no cover - during development only
        pass
    return renderers


_RENDERERS = _binary_renderers()
