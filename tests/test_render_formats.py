"""The report in Markdown, HTML, Word and CSV: structure, links, marks, escaping, macrons."""

from __future__ import annotations

import csv
import io
import itertools
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import docx
import pytest
from docx.document import Document
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from sqlmodel import Session

from models.compiler import build_document
from models.document import (
    ActionLine,
    ActiveAgency,
    Block,
    Link,
    MilestoneLine,
    ObjectiveSection,
    PillarSection,
    ReportDocument,
    Revision,
)
from models.importer import import_report
from models.render import Format, render
from models.render.csv_rows import COLUMNS
from models.render.markup import http_url, md_escape

EVIL = "<script>alert(1)</script> & Tāmaki"
FOOTNOTE = "*New actions (added after the Plan of Action was published) are numbered ‘N1’."


def small_report() -> ReportDocument:
    """A report with every feature the renderers must carry."""
    return ReportDocument(
        title="Plan of action implementation reports",
        year=2021,
        intro=[
            Block(text="The Plan of Action covers all of Aotearoa.", style="paragraph"),
            Block(text="Actions that aim to prevent modern slavery;"),
            Block(text="Action related to enforcement"),
        ],
        pillars=[
            PillarSection(
                name="Prevention",
                objectives=[
                    ObjectiveSection(
                        title="Undertake awareness raising and training",
                        actions=[
                            ActionLine(number="21", text="Undertake research."),
                            ActionLine(number="N1", text="Include survivors.", footnoted=True),
                            ActionLine(
                                number="26",
                                text="Support multilateral forums.",
                                incorporated_into="9",
                            ),
                        ],
                        actions_footnote=FOOTNOTE,
                        year=2021,
                        active_agencies=[
                            ActiveAgency(
                                name="Ministry of Business, Innovation & Employment",
                                acronym="MBIE",
                            ),
                            ActiveAgency(name="New Zealand Police", acronym="NZP"),
                        ],
                        intro="Many deliverables are ongoing.",
                        achievements=[
                            Block(
                                text=f"Conference held in {EVIL}.",
                                agency="MBIE",
                                links=[
                                    Link(
                                        title="Take the next step",
                                        url="https://www.employment.govt.nz/next-step",
                                        site="Employment.govt.nz",
                                    ),
                                    Link(title="ASEAN Regional Forum"),
                                ],
                            ),
                            Block(text="A paragraph of context.", style="paragraph", agency="OT"),
                            Block(
                                text="Carried forward from 2020.",
                                agency="DIA",
                                not_updated=True,
                                links=[
                                    Link(
                                        title="Sneaky link",
                                        url="javascript:alert(1)",
                                        site="Nowhere",
                                    )
                                ],
                            ),
                        ],
                        further_work=[],
                        milestones=[
                            MilestoneLine(
                                text="Police plan to deliver training to recruits.",
                                due="Quarter 3 2022",
                                start=date(2022, 7, 1),
                                end=date(2022, 9, 30),
                                delayed_from="2021",
                                lead="NZP",
                                status="delayed",
                                history=[
                                    Revision(
                                        year=2021,
                                        previous="2021",
                                        new="Quarter 1 2022",
                                        reason=None,
                                    ),
                                    Revision(
                                        year=2022,
                                        previous="Quarter 1 2022",
                                        new="Quarter 3 2022",
                                        reason="COVID-19",
                                    ),
                                ],
                            ),
                            MilestoneLine(
                                text=f"Ongoing work in {EVIL}",
                                lead="MBIE",
                                not_updated=True,
                            ),
                        ],
                    ),
                    ObjectiveSection(
                        title="Prevent exploitation from escalating",
                        actions=[ActionLine(number="6", text="Consider opportunities.")],
                    ),
                ],
            ),
            PillarSection(
                name="Protection",
                objectives=[
                    ObjectiveSection(
                        title="Support victims",
                        actions=[ActionLine(number="18", text="Facilitate support.")],
                        year=2021,
                        active_agencies=[ActiveAgency(name="Oranga Tamariki", acronym="OT")],
                        milestones=[
                            MilestoneLine(
                                text="=HYPERLINK(1) formula-looking text.",
                                due="2023",
                                start=date(2023, 1, 1),
                                end=date(2023, 12, 31),
                                lead="OT",
                                links=[
                                    Link(
                                        title="Child at the centre",
                                        url="https://www.orangatamariki.govt.nz/x?a=1&b=2",
                                        site="Oranga Tamariki",
                                    )
                                ],
                            )
                        ],
                    )
                ],
            ),
        ],
        last_updated=date(2022, 1, 19),
    )


# --- Markdown -------------------------------------------------------------------------------


def markdown(doc: ReportDocument, **options: bool) -> str:
    return render(doc, "md", **options).decode("utf-8")


def commonmark(text: str) -> str:
    return str(MarkdownIt("commonmark").render(text))


def test_markdown_has_the_report_structure_as_headings() -> None:
    headings = [line for line in markdown(small_report()).splitlines() if line.startswith("#")]
    assert headings == [
        "# Plan of action implementation reports",
        "## Prevention",
        "### Undertake awareness raising and training",
        "#### Actions",
        "#### Annual implementation report 2021",
        "##### Key achievements",
        "##### Areas for further work",
        "##### Upcoming milestones",
        "### Prevent exploitation from escalating",
        "#### Actions",
        "## Protection",
        "### Support victims",
        "#### Actions",
        "#### Annual implementation report 2021",
        "##### Key achievements",
        "##### Areas for further work",
        "##### Upcoming milestones",
    ]


def test_markdown_lines_read_like_the_published_report() -> None:
    lines = markdown(small_report()).splitlines()
    assert "- **N1\\*.** Include survivors." in lines
    assert (
        "- **26.** Action 26 has been incorporated into Action 9. (Support multilateral forums.)"
        in lines
    )
    assert "\\*New actions (added after the Plan of Action was published) are numbered ‘N1’." in (
        lines
    )
    assert (
        "**Active agencies** – Ministry of Business, Innovation &amp; Employment (MBIE), "
        "New Zealand Police (NZP)"
    ) in lines
    assert (
        "- Quarter 3 2022 – Police plan to deliver training to recruits (Delayed from 2021)."
        in lines
    )
    assert "- None identified at this stage." in lines
    assert (
        "  [Take the next step](https://www.employment.govt.nz/next-step) — Employment.govt.nz\\"
        in (lines)
    )
    assert lines[-1] == "Last updated: 19 January 2022"
    # Authors are the coordinator's view only.
    assert "(MBIE)*" not in "\n".join(lines)


def test_markdown_renders_to_the_report_without_raw_html() -> None:
    source = markdown(small_report())
    assert "<script>" not in source
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Tāmaki" in source
    html = commonmark(source)
    # Shown as text, never as an element.
    assert "<script>" not in html
    assert "Conference held in &lt;script&gt;alert(1)&lt;/script&gt; &amp; Tāmaki." in html
    assert "<h1>Plan of action implementation reports</h1>" in html
    assert "<h5>Upcoming milestones</h5>" in html
    assert (
        '<a href="https://www.employment.govt.nz/next-step">Take the next step</a>'
        " — Employment.govt.nz" in html
    )
    assert "<strong>N1*.</strong> Include survivors." in html
    assert "<strong>[Not updated]</strong> Carried forward from 2020." in html
    assert "<strong>[Not updated]</strong> Ongoing work in" in html
    # A link that is not http(s) is shown as its title, never as a link.
    assert "javascript:" not in html
    assert "Sneaky link — Nowhere" in html
    assert "ASEAN Regional Forum" in html
    assert html.count("<li>None identified at this stage.</li>") == 3


def test_markdown_shows_authors_only_when_asked() -> None:
    source = markdown(small_report(), show_authors=True)
    assert "Conference held in &lt;script&gt;alert(1)&lt;/script&gt; &amp; Tāmaki. *(MBIE)*" in (
        source
    )
    assert "(Delayed from 2021). *(NZP)*" in source


@pytest.mark.parametrize(
    "text",
    [
        "# not a heading",
        "## neither",
        "1. not a list",
        "2) nor this",
        "- not a bullet",
        "+ nor this",
        "* nor this",
        "=====",
        "---",
        "> not a quote",
        "*not emphasis* and _not_ either",
        "**not strong**",
        "[not a link](https://example.org)",
        "![not an image](x.png)",
        "`not code`",
        "<b>not bold</b> &amp; not an entity &copy;",
        "a \\ backslash at the end \\",
        "~~not struck~~ | not | a table",
        "    not code either",
    ],
)
def test_md_escape_keeps_text_literal(text: str) -> None:
    assert commonmark(md_escape(text)) == f"<p>{escapeHtml(text.strip())}</p>\n"


@given(
    st.text(
        alphabet=st.characters(
            min_codepoint=0x20, max_codepoint=0x17F, blacklist_categories=("Cc", "Cs")
        ),
        min_size=1,
        max_size=40,
    ).filter(lambda text: text.strip() == text and text != "")
)
def test_md_escape_keeps_any_line_literal(text: str) -> None:
    assert commonmark(md_escape(text)) == f"<p>{escapeHtml(text)}</p>\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a?b=1&c=2", "https://example.org/a?b=1&c=2"),
        ("http://example.org/a b", "http://example.org/a%20b"),
        ("HTTPS://example.org/t%C4%81maki", "HTTPS://example.org/t%C4%81maki"),
        ("https://example.org/tāmaki", "https://example.org/t%C4%81maki"),
        ("javascript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("mailto:someone@example.org", None),
        ("/relative/path", None),
        ("https://", None),
        ("https://example.org/\nx", None),
        ("", None),
        (None, None),
    ],
)
def test_only_http_urls_become_links(url: str | None, expected: str | None) -> None:
    assert http_url(url) == expected


# --- HTML -----------------------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""
    classes: list[str] = field(default_factory=list)
    parent: Element | None = None


class PageParser(HTMLParser):
    """Every element with its attributes and its whole text content; the doctype."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doctype: str | None = None
        self.elements: list[Element] = []
        self._open: list[Element] = []

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        parent = self._open[-1] if self._open else None
        element = Element(tag, values, classes=(values.get("class") or "").split(), parent=parent)
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self._open and self._open[-1].tag == tag, f"</{tag}> closes {self._open[-1:]}"
        self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    def find(self, tag: str, cls: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (cls is None or cls in e.classes)]


def page(doc: ReportDocument, **options: bool) -> tuple[str, PageParser]:
    html = render(doc, "html", **options).decode("utf-8")
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return html, parser


def squash(text: str) -> str:
    return " ".join(text.split())


def test_html_is_a_standalone_accessible_page() -> None:
    html, parsed = page(small_report())
    assert html.startswith("<!doctype html>\n")
    assert parsed.doctype == "doctype html"
    assert parsed.find("html")[0].attrs["lang"] == "en-NZ"
    metas = parsed.find("meta")
    assert {"charset": "utf-8"} in [m.attrs for m in metas]
    assert any(m.attrs.get("name") == "viewport" for m in metas)
    assert squash(parsed.find("title")[0].text) == (
        "Plan of action implementation reports – Annual implementation report 2021"
    )
    # Nothing loaded from anywhere, nothing run.
    assert parsed.find("script") == []
    assert parsed.find("link") == [] and parsed.find("img") == []
    assert all("src" not in e.attrs for e in parsed.elements)
    style = parsed.find("style")[0].text
    assert "@media print" in style
    assert "url(" not in style and "@import" not in style


def test_html_headings_follow_the_report_in_order() -> None:
    _, parsed = page(small_report())
    headings = [(int(e.tag[1]), squash(e.text)) for e in parsed.elements if e.tag in HEADINGS]
    assert headings[:10] == [
        (1, "Plan of action implementation reports"),
        (2, "Contents"),
        (2, "Prevention"),
        (3, "Undertake awareness raising and training"),
        (4, "Actions"),
        (4, "Annual implementation report 2021"),
        (5, "Key achievements"),
        (5, "Areas for further work"),
        (5, "Upcoming milestones"),
        (3, "Prevent exploitation from escalating"),
    ]
    levels = [level for level, _ in headings]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels


HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


def test_html_contents_link_to_every_pillar_and_objective() -> None:
    _, parsed = page(small_report())
    ids = {e.attrs["id"]: squash(e.text) for e in parsed.elements if e.attrs.get("id")}
    nav = parsed.find("nav")[0]
    targets = [
        str(a.attrs["href"]) for a in parsed.find("a") if str(a.attrs["href"]).startswith("#")
    ]
    assert [ids[href[1:]] for href in targets] == [
        "Prevention",
        "Undertake awareness raising and training",
        "Prevent exploitation from escalating",
        "Protection",
        "Support victims",
    ]
    assert nav.attrs["aria-labelledby"] == "toc-heading"
    labelled_by = [
        e.attrs["aria-labelledby"] for e in parsed.elements if "aria-labelledby" in e.attrs
    ]
    assert len(labelled_by) == 1 + 2 + 3 + 2  # contents, pillars, objectives, annual reports
    assert all(target in ids for value in labelled_by for target in value.split())
    # Each landmark has a name of its own: an annual report's names its objective too (a
    # screen reader's list of regions would otherwise repeat "Annual implementation report").
    assert len(set(labelled_by)) == len(labelled_by)
    assert all(len(v.split()) == 2 for v in labelled_by if v.startswith("report-"))
    assert len(ids) == len([e for e in parsed.elements if e.attrs.get("id")])  # unique


def test_html_escapes_text_and_links_only_http_urls() -> None:
    html, parsed = page(small_report())
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Tāmaki" in html
    # Read back as text, it is the agency's text exactly.
    items = [squash(li.text) for li in parsed.find("li") if "Conference" in li.text]
    assert items and items[0].startswith(f"Conference held in {EVIL}.")
    links = [a for a in parsed.find("a") if not (a.attrs.get("href") or "").startswith("#")]
    assert [(a.attrs["href"], squash(a.text), a.attrs["rel"]) for a in links] == [
        (
            "https://www.employment.govt.nz/next-step",
            "Take the next step (external link)",
            "noopener",
        ),
        (
            "https://www.orangatamariki.govt.nz/x?a=1&b=2",
            "Child at the centre (external link)",
            "noopener",
        ),
    ]
    assert "javascript:" not in html
    assert "Sneaky link — Nowhere" in squash(parsed.find("ul", "links")[-2].text)


def test_html_carries_the_report_content() -> None:
    _, parsed = page(small_report())
    assert squash(parsed.find("ul", "actions")[0].text) == (
        "21. Undertake research. N1*. Include survivors. 26. Action 26 has been incorporated "
        "into Action 9. (Support multilateral forums.)"
    )
    assert squash(parsed.find("p", "footnote")[0].text) == FOOTNOTE
    assert squash(parsed.find("p", "active-agencies")[0].text) == (
        "Active agencies – Ministry of Business, Innovation & Employment (MBIE), "
        "New Zealand Police (NZP)"
    )
    assert squash(parsed.find("ul", "milestones")[0].text).startswith(
        "Quarter 3 2022 – Police plan to deliver training to recruits (Delayed from 2021)."
    )
    assert [squash(p.text) for p in parsed.find("p", "none")] == [
        "None identified at this stage."
    ] * 3
    assert squash(parsed.find("footer")[0].text) == "Last updated: 19 January 2022"
    assert parsed.find("time")[0].attrs["datetime"] == "2022-01-19"


def test_html_marks_entries_not_updated() -> None:
    _, parsed = page(small_report())
    marked = [squash(e.text) for e in parsed.find("li", "not-updated")]
    assert marked == [
        "Not updated Carried forward from 2020. Sneaky link — Nowhere",
        f"Not updated Ongoing work in {EVIL}",
    ]
    assert [squash(e.text) for e in parsed.find("span", "badge")] == ["Not updated"] * 2


def test_html_shows_authors_only_when_asked() -> None:
    _, plain = page(small_report())
    assert not any("data-agency" in e.attrs for e in plain.elements)
    assert plain.find("span", "agency") == []
    _, review = page(small_report(), show_authors=True)
    authors = [e.attrs["data-agency"] for e in review.elements if "data-agency" in e.attrs]
    assert authors == ["MBIE", "OT", "DIA", "NZP", "MBIE", "OT"]
    assert [squash(s.text) for s in review.find("span", "agency")] == authors


# --- Word -----------------------------------------------------------------------------------


def word(doc: ReportDocument, **options: bool) -> Document:
    return docx.Document(io.BytesIO(render(doc, Format.DOCX, **options)))


def test_docx_has_real_headings_and_lists() -> None:
    document = word(small_report())
    outline = [
        (p.style.name, p.text)
        for p in document.paragraphs
        if p.style is not None and p.style.name.startswith(("Title", "Heading"))
    ]
    assert outline[:10] == [
        ("Title", "Plan of action implementation reports"),
        ("Heading 1", "Prevention"),
        ("Heading 2", "Undertake awareness raising and training"),
        ("Heading 3", "Actions"),
        ("Heading 3", "Annual implementation report 2021"),
        ("Heading 4", "Key achievements"),
        ("Heading 4", "Areas for further work"),
        ("Heading 4", "Upcoming milestones"),
        ("Heading 2", "Prevent exploitation from escalating"),
        ("Heading 3", "Actions"),
    ]
    bullets = [p.text for p in document.paragraphs if p.style and p.style.name == "List Bullet"]
    assert bullets == [
        "Actions that aim to prevent modern slavery;",
        "Action related to enforcement",
        f"Conference held in {EVIL}.",
        "[Not updated] Carried forward from 2020.",
        "None identified at this stage.",
        "Quarter 3 2022 – Police plan to deliver training to recruits (Delayed from 2021).",
        f"[Not updated] Ongoing work in {EVIL}",
        "None identified at this stage.",
        "None identified at this stage.",
        "2023 – =HYPERLINK(1) formula-looking text.",
    ]


def test_docx_keeps_text_links_footnote_and_date() -> None:
    document = word(small_report())
    texts = [p.text for p in document.paragraphs]
    assert "N1*. Include survivors." in texts
    assert "26. Action 26 has been incorporated into Action 9. (Support multilateral forums.)" in (
        texts
    )
    assert FOOTNOTE in texts
    assert "A paragraph of context." in texts
    assert "Active agencies – Ministry of Business, Innovation & Employment (MBIE), " in texts[13]
    assert texts[-1] == "Last updated: 19 January 2022"
    hyperlinks = [(h.text, h.url) for p in document.paragraphs for h in p.hyperlinks]
    assert hyperlinks == [
        ("Take the next step", "https://www.employment.govt.nz/next-step"),
        ("Child at the centre", "https://www.orangatamariki.govt.nz/x?a=1&b=2"),
    ]
    assert "Take the next step — Employment.govt.nz" in texts
    assert "ASEAN Regional Forum" in texts
    assert "Sneaky link — Nowhere" in texts
    assert document.core_properties.title == (
        "Plan of action implementation reports – Annual implementation report 2021"
    )


def test_docx_xml_escapes_markup_and_keeps_macrons() -> None:
    data = render(small_report(), "docx")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        body = package.read("word/document.xml").decode("utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Tāmaki" in body
    assert "<script>" not in body


def test_docx_is_the_same_bytes_for_the_same_report() -> None:
    assert render(small_report(), "docx") == render(small_report(), "docx")


def test_docx_body_ends_with_its_section_properties() -> None:
    # Word wants w:sectPr last in the body; the writer appends paragraphs before it.
    body = word(small_report()).element.body
    assert body[-1].tag.endswith("}sectPr")
    assert len(body.findall("{*}sectPr")) == 1


def test_docx_drops_characters_word_cannot_hold() -> None:
    doc = small_report()
    doc.intro[0].text = "Bell\x07 and form feed\x0c gone"
    document = word(doc)
    assert "Bell and form feed gone" in [p.text for p in document.paragraphs]


def test_docx_shows_authors_only_when_asked() -> None:
    plain = [p.text for p in word(small_report()).paragraphs]
    assert f"Conference held in {EVIL}." in plain
    review = [p.text for p in word(small_report(), show_authors=True).paragraphs]
    assert f"Conference held in {EVIL}. (MBIE)" in review


# --- CSV ------------------------------------------------------------------------------------


def rows(doc: ReportDocument) -> tuple[bytes, list[dict[str, str]]]:
    data = render(doc, "csv")
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return data, list(reader)


def test_csv_has_one_row_per_milestone() -> None:
    data, table = rows(small_report())
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.splitlines()[0] == b",".join(c.encode() for c in COLUMNS)
    assert table == [
        {
            "pillar": "Prevention",
            "objective": "Undertake awareness raising and training",
            "actions": "21; N1; 26",
            "lead_agency": "NZP",
            "due": "Quarter 3 2022",
            "start": "2022-07-01",
            "end": "2022-09-30",
            "status": "delayed",
            "delayed_from": "2021",
            "history": (
                "2021: 2021 → Quarter 1 2022; 2022: Quarter 1 2022 → Quarter 3 2022 (COVID-19)"
            ),
            "text": "Police plan to deliver training to recruits.",
        },
        {
            "pillar": "Prevention",
            "objective": "Undertake awareness raising and training",
            "actions": "21; N1; 26",
            "lead_agency": "MBIE",
            "due": "",
            "start": "",
            "end": "",
            "status": "planned",
            "delayed_from": "",
            "history": "",
            "text": f"Ongoing work in {EVIL}",
        },
        {
            "pillar": "Protection",
            "objective": "Support victims",
            "actions": "18",
            "lead_agency": "OT",
            "due": "2023",
            "start": "2023-01-01",
            "end": "2023-12-31",
            "status": "planned",
            "delayed_from": "",
            "history": "",
            # A spreadsheet would run it as a formula; the apostrophe makes it text.
            "text": "'=HYPERLINK(1) formula-looking text.",
        },
    ]


def test_csv_of_a_report_without_milestones_is_the_header() -> None:
    doc = small_report()
    for objective in doc.objectives():
        objective.milestones = []
    data, table = rows(doc)
    assert table == []
    assert data == (",".join(COLUMNS) + "\r\n").encode()


def test_every_format_renders_an_empty_report() -> None:
    doc = ReportDocument(title="Empty", year=2022)
    assert "# Empty" in markdown(doc)
    _, parsed = page(doc)
    assert squash(parsed.find("h1")[0].text) == "Empty"
    assert word(doc).paragraphs[0].text == "Empty"
    assert rows(doc)[1] == []


# --- The real 2021 report, imported into the database and compiled back ----------------------

IMPORTED_AT = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)
OBJECTIVES_2021 = 10
MILESTONES_2021 = 32
BALI = "Bali Process Disruption of People Smuggling and Trafficking Working Group compendium"


@pytest.fixture
def report_2021(session: Session, report_2021_text: str) -> ReportDocument:
    summary = import_report(session, report_2021_text, IMPORTED_AT)
    return build_document(session, summary.plan_id, 2021)


def test_the_2021_report_in_markdown(report_2021: ReportDocument) -> None:
    source = markdown(report_2021)
    lines = source.splitlines()
    assert lines[0] == "# Plan of action implementation reports"
    assert [line for line in lines if line.startswith("## ")] == [
        "## Prevention",
        "## Protection",
        "## Enforcement",
    ]
    assert len([line for line in lines if line.startswith("### ")]) == OBJECTIVES_2021
    assert "- **N1\\*.** Recognise and include victim or survivor experiences and expertise." in (
        lines
    )
    assert any(
        line.startswith("- **26.** Action 26 has been incorporated into Action 9.")
        for line in lines
    )
    assert any(line.startswith(f"- Quarter 1 2022 – {BALI}") for line in lines)
    assert "published (Delayed from Quarter 3-4 2021)." in source
    assert "Innovation &amp; Employment (MBIE)" in source
    assert lines[-1] == "Last updated: 19 January 2022"
    html = commonmark(source)
    assert html.count("<h3>") == OBJECTIVES_2021
    assert "<li>None identified at this stage.</li>" in html


def test_the_2021_report_as_a_page(report_2021: ReportDocument) -> None:
    html, parsed = page(report_2021)
    assert len(parsed.find("h3")) == OBJECTIVES_2021
    contents = [a for a in parsed.find("a") if str(a.attrs["href"]).startswith("#objective-")]
    assert len(contents) == OBJECTIVES_2021
    assert squash(parsed.find("nav")[0].text).startswith(
        "Contents Prevention Undertake awareness raising and training"
    )
    numbers = [squash(span.text) for span in parsed.find("span", "number")]
    assert len(numbers) == 29 and "N1*." in numbers and numbers[-1] == "28."
    milestones = [
        squash(li.text)
        for li in parsed.find("li")
        if li.parent is not None and "milestones" in li.parent.classes
    ]
    assert len(milestones) == MILESTONES_2021
    assert (
        f"Quarter 1 2022 – {BALI} of successful operations published "
        "(Delayed from Quarter 3-4 2021)."
    ) in milestones
    assert "within Aotearoa." in html
    assert squash(parsed.find("footer")[0].text) == "Last updated: 19 January 2022"


def test_the_2021_report_in_word(report_2021: ReportDocument) -> None:
    document = word(report_2021)
    paragraphs = [(p.style.name if p.style else "", p.text) for p in document.paragraphs]
    assert paragraphs[0] == ("Title", "Plan of action implementation reports")
    assert [text for style, text in paragraphs if style == "Heading 1"] == [
        "Prevention",
        "Protection",
        "Enforcement",
    ]
    assert len([1 for style, _ in paragraphs if style == "Heading 2"]) == OBJECTIVES_2021
    texts = [text for _, text in paragraphs]
    assert "N1*. Recognise and include victim or survivor experiences and expertise." in texts
    bullets = [text for style, text in paragraphs if style == "List Bullet"]
    assert any(
        text.startswith(f"Quarter 1 2022 – {BALI}")
        and text.endswith("(Delayed from Quarter 3-4 2021).")
        for text in bullets
    )
    assert texts[-1] == "Last updated: 19 January 2022"


def test_the_2021_report_as_csv(report_2021: ReportDocument) -> None:
    _, table = rows(report_2021)
    assert len(table) == MILESTONES_2021
    assert {row["pillar"] for row in table} == {"Prevention", "Protection", "Enforcement"}
    assert all(row["lead_agency"] for row in table)
    (bali,) = [row for row in table if row["text"].startswith(BALI)]
    assert bali["due"] == "Quarter 1 2022"
    assert (bali["start"], bali["end"]) == ("2022-01-01", "2022-03-31")
    assert bali["delayed_from"] == "Quarter 3-4 2021"
    assert "Quarter 3-4 2021 → Quarter 1 2022" in bali["history"]
    assert bali["actions"] == "9; 10; 11; 12"
    (research,) = [row for row in table if row["text"].startswith("Commission a paper")]
    assert research["actions"] == "21; N1"
    assert research["delayed_from"] == "" and research["history"] == ""


def test_the_report_body_partial_renders_in_a_fresh_process() -> None:
    """Another page (the published page, the draft view) includes ``report/_body.html``
    with ``template_context``: that alone must register the filters the partial uses."""
    script = (
        "from models.document import ReportDocument, PillarSection, ObjectiveSection\n"
        "from models.render import template_context\n"
        "from templates import render\n"
        "doc = ReportDocument(title='T', year=2022, pillars=[PillarSection(name='P', "
        "objectives=[ObjectiveSection(title='O', year=2022)])])\n"
        "print(render('report/_body.html', **template_context(doc, show_authors=True)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert '<h3 id="objective-1-1">O</h3>' in result.stdout
