"""Render a ReportDocument as txt (the published text format), md, html, docx or csv.

The template formats (txt, md, html) are Jinja2 templates under ``templates/report/`` with the
filters registered here; ``markup`` holds what the markup formats share, ``word`` writes the
DOCX with python-docx, ``csv_rows`` the milestone table."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from models.document import NONE_IDENTIFIED, ActionLine, ActiveAgency, MilestoneLine, ReportDocument
from models.render import markup
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


def template_context(doc: ReportDocument, *, show_authors: bool = False) -> dict[str, object]:
    """What the report templates and their partials (``report/_body.html``) need, with the
    filters they use registered on the environment."""
    _register_filters()
    return {"doc": doc, "none_identified": NONE_IDENTIFIED, "show_authors": show_authors}


def _register_filters() -> None:
    env = environment()
    env.filters.update(
        action_line=action_line,
        agency_label=agency_label,
        milestone_text=milestone_text,
        milestone_line=milestone_line,
        long_date=long_date,
        md_escape=markup.md_escape,
        md_url=markup.md_url,
        http_url=markup.http_url,
        action_number=markup.action_number,
        action_body=markup.action_body,
        block_groups=markup.block_groups,
    )


def render_template(doc: ReportDocument, fmt: Format, *, show_authors: bool = False) -> str:
    context = template_context(doc, show_authors=show_authors)
    return environment().get_template(f"report/report.{fmt.value}").render(**context)


def render(doc: ReportDocument, fmt: Format | str, *, show_authors: bool = False) -> bytes:
    """The report in ``fmt``, as the bytes of the file to write.

    ``show_authors`` labels each entry with the agency that wrote it (md, html, docx), for
    the coordinator's review of a draft; the published report leaves it off."""
    fmt = Format(fmt)
    if fmt is Format.DOCX:
        # Imported here, not at module level: word uses this package's filters.
        from models.render.word import render_docx

        return render_docx(doc, show_authors=show_authors)
    if fmt is Format.CSV:
        from models.render.csv_rows import render_csv

        return render_csv(doc)
    return render_template(doc, fmt, show_authors=show_authors).encode("utf-8")
