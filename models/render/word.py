"""The report as a Word document a coordinator can edit: real heading styles (Title,
Heading 1-4), "List Bullet" lists, hyperlinks, document properties.

The output is byte-for-byte the same for the same document (fixed zip timestamps and core
properties), so a published version's checksum means something.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime

import docx
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor
from docx.text.paragraph import Paragraph

from models.document import NONE_IDENTIFIED, Block, Link, MilestoneLine, ReportDocument
from models.render import agency_label, long_date, milestone_line
from models.render.markup import action_body, action_number, block_groups, http_url

# Characters XML 1.0 cannot hold; python-docx refuses them, so they are dropped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_LINK_STYLE = "Hyperlink"
_NOT_UPDATED = "[Not updated]"


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


class _Writer:
    """Builds the body paragraph by paragraph.

    python-docx's ``add_paragraph(style=...)`` looks the style up among all styles and
    inserts before the section properties by scanning the body, which made a large plan's
    report quadratic (minutes). Here style ids are looked up once and paragraphs appended
    to the body, with the section properties put back at the end."""

    _STYLES = (
        "Title",
        "Subtitle",
        "Heading 1",
        "Heading 2",
        "Heading 3",
        "Heading 4",
        "List Bullet",
        "List Continue",
    )

    def __init__(self, *, show_authors: bool) -> None:
        self.document: Document = docx.Document()
        self.show_authors = show_authors
        self._add_link_style()
        styles = self.document.styles
        self._style_ids = {name: styles[name].style_id for name in (*self._STYLES, _LINK_STYLE)}
        self._link_ids: dict[str, str] = {}
        self._body = self.document.element.body
        self._section = self._body.sectPr
        if self._section is not None:
            self._body.remove(self._section)

    def finish(self) -> None:
        if self._section is not None:
            self._body.append(self._section)

    def _add_link_style(self) -> None:
        # The default template has no "Hyperlink" character style; Word's own is blue, underlined.
        styles = self.document.styles
        if _LINK_STYLE in [style.name for style in styles]:
            return
        style = styles.add_style(_LINK_STYLE, WD_STYLE_TYPE.CHARACTER)
        style.font.color.rgb = RGBColor(0x05, 0x63, 0xC1)
        style.font.underline = True

    def new_paragraph(self, style: str | None = None) -> Paragraph:
        element = OxmlElement("w:p")
        if style is not None:
            element.style = self._style_ids[style]
        self._body.append(element)
        return Paragraph(element, self.document)

    def heading(self, text: str, level: int) -> None:
        style = "Title" if level == 0 else f"Heading {level}"
        self.new_paragraph(style).add_run(_clean(text))

    def paragraph(self, text: str, style: str | None = None) -> None:
        self.new_paragraph(style).add_run(_clean(text))

    def entry(
        self,
        text: str,
        *,
        style: str | None,
        not_updated: bool,
        agency: str | None,
        links: Sequence[Link],
    ) -> None:
        paragraph = self.new_paragraph(style)
        if not_updated:
            marker = paragraph.add_run(_NOT_UPDATED)
            marker.bold = True
            marker.font.color.rgb = RGBColor(0x8A, 0x5A, 0x00)
            paragraph.add_run(" ")
        paragraph.add_run(_clean(text))
        if self.show_authors and agency:
            label = paragraph.add_run(f" ({_clean(agency)})")
            label.italic = True
            label.font.size = Pt(9)
        for link in links:
            self.link(link, style="List Continue" if style == "List Bullet" else None)

    def link(self, link: Link, *, style: str | None) -> None:
        paragraph = self.new_paragraph(style)
        url = http_url(link.url)
        if url:
            self._hyperlink(paragraph, url, _clean(link.title))
        else:
            paragraph.add_run(_clean(link.title))
        if link.site:
            paragraph.add_run(f" — {_clean(link.site)}")

    def _hyperlink(self, paragraph: Paragraph, url: str, text: str) -> None:
        # python-docx reads hyperlinks but cannot add them: build <w:hyperlink r:id=…> by hand.
        r_id = self._link_ids.get(url)
        if r_id is None:
            r_id = self.document.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
            self._link_ids[url] = r_id
        hyperlink = OxmlElement("w:hyperlink")
        hyperlink.set(qn("r:id"), r_id)
        hyperlink.set(qn("w:history"), "1")
        run = OxmlElement("w:r")
        properties = OxmlElement("w:rPr")
        run_style = OxmlElement("w:rStyle")
        run_style.set(qn("w:val"), self._style_ids[_LINK_STYLE])
        properties.append(run_style)
        run.append(properties)
        text_element = OxmlElement("w:t")
        text_element.text = text
        text_element.set(qn("xml:space"), "preserve")
        run.append(text_element)
        hyperlink.append(run)
        paragraph._p.append(hyperlink)

    def blocks(self, items: Sequence[Block]) -> None:
        for style, group in block_groups(items):
            for block in group:
                self.entry(
                    block.text,
                    style="List Bullet" if style == "bullet" else None,
                    not_updated=block.not_updated,
                    agency=block.agency,
                    links=block.links,
                )
        if not items:
            self.paragraph(NONE_IDENTIFIED, style="List Bullet")

    def milestones(self, items: Sequence[MilestoneLine]) -> None:
        for milestone in items:
            self.entry(
                milestone_line(milestone),
                style="List Bullet",
                not_updated=milestone.not_updated,
                agency=milestone.lead,
                links=milestone.links,
            )
        if not items:
            self.paragraph(NONE_IDENTIFIED, style="List Bullet")

    def labelled(self, label: str, text: str) -> None:
        paragraph = self.new_paragraph()
        paragraph.add_run(label).bold = True
        paragraph.add_run(_clean(text))

    def write(self, doc: ReportDocument) -> None:
        self.heading(doc.title, 0)
        self.paragraph(f"Annual implementation report {doc.year}", style="Subtitle")
        if doc.intro:
            self.blocks(doc.intro)
        for pillar in doc.pillars:
            self.heading(pillar.name, 1)
            for objective in pillar.objectives:
                self.heading(objective.title, 2)
                self.heading("Actions", 3)
                for action in objective.actions:
                    paragraph = self.new_paragraph()
                    paragraph.add_run(_clean(action_number(action))).bold = True
                    paragraph.add_run(" " + _clean(action_body(action)))
                if objective.actions_footnote:
                    footnote = self.new_paragraph()
                    run = footnote.add_run(_clean(objective.actions_footnote))
                    run.italic = True
                    run.font.size = Pt(9)
                if objective.year is None:
                    continue
                self.heading(f"Annual implementation report {objective.year}", 3)
                agencies = ", ".join(agency_label(agency) for agency in objective.active_agencies)
                self.labelled("Active agencies", f" – {agencies}")
                if objective.intro:
                    self.paragraph(objective.intro)
                self.heading("Key achievements", 4)
                self.blocks(objective.achievements)
                self.heading("Areas for further work", 4)
                self.blocks(objective.further_work)
                self.heading("Upcoming milestones", 4)
                self.milestones(objective.milestones)
        if doc.last_updated:
            self.paragraph(f"Last updated: {long_date(doc.last_updated)}")

    def properties(self, doc: ReportDocument) -> None:
        core = self.document.core_properties
        core.title = _clean(f"{doc.title} – Annual implementation report {doc.year}")
        core.subject = _clean(doc.title)
        core.author = "reportcycle"
        core.last_modified_by = "reportcycle"
        core.language = "en-NZ"
        core.revision = 1
        # Dates from the document, never the clock, so the same report gives the same bytes.
        day = doc.last_updated
        stamp = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None
        stamp = stamp or datetime(doc.year, 1, 1, tzinfo=UTC)
        core.created = stamp
        core.modified = stamp


def _stable_zip(data: bytes) -> bytes:
    """The same package with fixed member timestamps (python-docx stamps the current time)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            target.writestr(member, source.read(info.filename))
    return out.getvalue()


def render_docx(doc: ReportDocument, *, show_authors: bool = False) -> bytes:
    """The report as the bytes of a .docx file."""
    writer = _Writer(show_authors=show_authors)
    writer.write(doc)
    writer.finish()
    writer.properties(doc)
    buffer = io.BytesIO()
    writer.document.save(buffer)
    return _stable_zip(buffer.getvalue())
