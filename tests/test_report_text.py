"""Reading the published text format (no database)."""

from __future__ import annotations

from datetime import date

import pytest

from models.report_text import ImportFormatError, parse_report


def test_reads_the_structure_of_the_real_2021_report(report_2021_text: str) -> None:
    doc = parse_report(report_2021_text)
    assert doc.title == "Plan of action implementation reports"
    assert doc.year == 2021
    assert doc.last_updated == date(2022, 1, 19)
    assert [p.name for p in doc.pillars] == ["Prevention", "Protection", "Enforcement"]
    objectives = doc.objectives()
    assert len(objectives) == 10
    assert sum(len(o.actions) for o in objectives) == 29
    assert sum(len(o.milestones) for o in objectives) == 32
    numbers = [a.number for o in objectives for a in o.actions]
    assert numbers == [str(n) for n in range(1, 22)] + ["N1"] + [str(n) for n in range(22, 29)]
    # The introduction: three paragraphs, then the pillars as bullets.
    assert [b.style for b in doc.intro] == ["paragraph"] * 3 + ["bullet"] * 3


def test_reads_the_quirks_of_the_first_objective(report_2021_text: str) -> None:
    first = parse_report(report_2021_text).objectives()[0]
    assert [a.acronym for a in first.active_agencies] == ["MBIE", "DIA", "NZP", "OT"]
    # Dated bullets under "Areas for further work" are milestones, with their links.
    assert [b.text for b in first.further_work] == [
        "Encourage other government agencies to deliver people trafficking training to "
        "relevant staff."
    ]
    assert [m.due for m in first.milestones] == [
        "December 2021",
        "December 2021",
        "Quarter 1 2022",
        "Quarter 2 2022",
        "Quarter 2 2022",
        "Quarter 3 2022",
    ]
    assert first.milestones[4].links[0].site == "Oranga Tamariki"
    assert first.achievements[0].links[0].title == (
        "Tango i te kaupae muri - Take the next step conference"
    )


def test_reads_footnoted_and_incorporated_actions(report_2021_text: str) -> None:
    objectives = parse_report(report_2021_text).objectives()
    understanding = objectives[6]
    n1 = understanding.actions[-1]
    assert (n1.number, n1.footnoted) == ("N1", True)
    assert understanding.actions_footnote is not None
    assert understanding.actions_footnote.startswith("*New actions")
    action_26 = objectives[9].actions[0]
    assert action_26.number == "26"
    assert action_26.incorporated_into == "9"
    assert action_26.text.startswith("Continue to support and contribute")


def test_reads_milestone_delays_links_and_empty_lists(report_2021_text: str) -> None:
    objectives = parse_report(report_2021_text).objectives()
    escalation = objectives[1]
    bill = escalation.milestones[2]
    assert bill.due == "Quarter 2 2022"
    assert bill.delayed_from == "Q3 2021"
    assert bill.text.endswith("Exploitation Review.")
    assert (bill.start, bill.end) == (date(2022, 4, 1), date(2022, 6, 30))
    visa = escalation.milestones[4]
    assert visa.text == "Accredited Employer Work Visa to be introduced."
    assert visa.delayed_from == "2021"
    assert escalation.further_work == []  # "None identified at this stage."
    assert objectives[9].milestones == []
    asean = objectives[2].achievements[2].links[0]
    assert (asean.title, asean.site, asean.url) == ("ASEAN Regional Forum", None, None)
    # A paragraph inside "Key achievements" stays a paragraph.
    assert objectives[7].achievements[0].style == "paragraph"


@pytest.mark.parametrize(
    "variant",
    ["bullets", "blank_lines", "crlf", "navigation", "trailing_footer"],
)
def test_layout_variants_do_not_change_the_result(report_2021_text: str, variant: str) -> None:
    text = report_2021_text
    if variant == "bullets":
        lines = text.split("\n")
        text = "\n".join(
            ("• " if i % 2 else "* ") + line[2:] if line.startswith("- ") else line
            for i, line in enumerate(lines)
        )
    elif variant == "blank_lines":
        text = text.replace("\n", "\n\n   \n")
    elif variant == "crlf":
        text = text.replace("\n", "\r\n")
    elif variant == "navigation":
        text = "Skip to main content\nHome\nAbout us\nMenu\nSearch\n" + text
    elif variant == "trailing_footer":
        text = text + "\nBack to top\nCopyright © Crown"
    assert parse_report(text) == parse_report(report_2021_text)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 0, "empty"),
        ("   \n\n", 0, "empty"),
        ("Just a title\nSome paragraph.\n", 0, "no pillars"),
        (
            "Reports\nPillar\nObjective\nActions\nnot an action\n",
            5,
            "expected numbered actions",
        ),
        (
            "Reports\nPillar\nObjective\nActions\n1. Do it.\nAnnual implementation report 2021\n"
            "Active agencies – nobody in particular\n",
            7,
            "Full Name (ACRONYM)",
        ),
        (
            "Reports\nPillar\nObjective\nActions\n1. Do it.\nAnnual implementation report 2021\n"
            "Active agencies – Ministry of Justice (MoJ)\nKey achievements\n"
            "Orphan(external link) — Somewhere\n",
            9,
            "link line",
        ),
        (
            "Reports\nPillar\nObjective\nActions\n1. Do it.\nAnnual implementation report 2021\n"
            "Active agencies – Ministry of Justice (MoJ)\nUpcoming milestones\n"
            "A paragraph where a milestone should be.\n",
            9,
            "milestone bullet",
        ),
        (
            "Reports\nPillar\nObjective\nActions\n1. Do it.\nAnnual implementation report 2021\n"
            "Active agencies – Ministry of Justice (MoJ)\nKey achievements\n- Done.\n"
            "Last updated: sometime soon\n",
            10,
            "Last updated",
        ),
    ],
)
def test_unreadable_documents_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ImportFormatError) as caught:
        parse_report(text)
    assert caught.value.line == line
    assert fragment in str(caught.value)
    if line:
        assert f"line {line}:" in str(caught.value)


def test_a_link_that_is_not_http_is_refused() -> None:
    text = (
        "Reports\nPillar\nObjective\nActions\n1. Do it.\nAnnual implementation report 2021\n"
        "Active agencies – Ministry of Justice (MoJ)\nKey achievements\n- Done.\n"
        "Evil(external link) — Site <javascript:alert(1)>\n"
    )
    with pytest.raises(ImportFormatError, match="line 10: a link must be http"):
        parse_report(text)


def test_undated_milestones_are_kept_undated_not_guessed() -> None:
    text = (
        "Reports\nPillar\nObjective\nActions\n1. Do it.\nAnnual implementation report 2021\n"
        "Active agencies – Ministry of Justice (MoJ)\nUpcoming milestones\n"
        "- Ongoing – Keep training staff.\n- Review the guidance.\n- Q5 2022 – Odd quarter.\n"
    )
    milestones = parse_report(text).objectives()[0].milestones
    assert [(m.due, m.start, m.text) for m in milestones] == [
        ("Ongoing", None, "Keep training staff."),
        (None, None, "Review the guidance."),
        ("Q5 2022", None, "Odd quarter."),
    ]
