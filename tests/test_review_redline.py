"""The redline: word-level insertions and deletions as escaped HTML."""

from __future__ import annotations

from models.document import Block, ObjectiveSection, PillarSection, ReportDocument
from models.redline import redline_documents, redline_texts


def test_changed_words_are_marked_within_the_line() -> None:
    diff = redline_texts(
        "Heading\n- Training delivered to 100 staff.\nFooter",
        "Heading\n- Training delivered to 240 frontline staff.\nFooter",
        context=None,
    )
    assert [line.kind for line in diff.lines] == ["same", "changed", "same"]
    assert str(diff.lines[1].html) == (
        "- Training delivered to <del>100</del><ins>240 frontline</ins> staff."
    )
    assert (diff.inserted_words, diff.deleted_words) == (2, 1)


def test_added_and_removed_lines_and_context() -> None:
    old = "\n".join(f"line {i}" for i in range(20))
    new = old.replace("line 10", "line ten") + "\nline 20"
    diff = redline_texts(old, new, context=1)
    kinds = [line.kind for line in diff.lines]
    assert kinds == ["gap", "same", "changed", "same", "gap", "same", "added"]
    assert str(diff.lines[0].html) == "… 9 unchanged lines …"
    assert str(diff.lines[-1].html) == "<ins>line 20</ins>"
    removed = redline_texts("a\nb\nc", "a\nc", context=None)
    assert [str(line.html) for line in removed.lines] == ["a", "<del>b</del>", "c"]


def test_unrelated_lines_are_deleted_and_inserted_whole_not_mixed_word_by_word() -> None:
    old = "\n".join(
        [
            "Key achievements",
            "- Conference delivered in March 2021, attended by 150 people.",
            "- New training modules on people trafficking completed by MBIE.",
            "Areas for further work",
        ]
    )
    new = "\n".join(
        [
            "Key achievements",
            "- Information about migrant exploitation is now on the MBIE website.",
            "- New training modules on people trafficking completed by MBIE and Police.",
            "- Oranga Tamariki staff completed training.",
            "Areas for further work",
        ]
    )
    diff = redline_texts(old, new, context=None)
    assert [(line.kind, str(line.html)) for line in diff.lines] == [
        ("same", "Key achievements"),
        ("removed", "<del>- Conference delivered in March 2021, attended by 150 people.</del>"),
        (
            "added",
            "<ins>- Information about migrant exploitation is now on the MBIE website.</ins>",
        ),
        (
            "changed",
            "- New training modules on people trafficking completed by "
            "<del>MBIE.</del><ins>MBIE and Police.</ins>",
        ),
        ("added", "<ins>- Oranga Tamariki staff completed training.</ins>"),
        ("same", "Areas for further work"),
    ]


def test_every_text_is_escaped() -> None:
    diff = redline_texts("<b>bold</b> & co", "<i>x</i> & co", context=None)
    html = str(diff.html())
    assert "<b>" not in html and "<i>" not in html
    assert "<del>&lt;b&gt;bold&lt;/b&gt;</del><ins>&lt;i&gt;x&lt;/i&gt;</ins> &amp; co" in html


def test_identical_reports_have_no_changes() -> None:
    doc = ReportDocument(
        title="Plan",
        year=2022,
        pillars=[
            PillarSection(
                name="Prevention",
                objectives=[
                    ObjectiveSection(title="Train", year=2022, achievements=[Block(text="Done.")])
                ],
            )
        ],
    )
    same = redline_documents(doc, doc.model_copy(deep=True))
    assert not same.changed and same.lines == ()
    changed = doc.model_copy(deep=True)
    changed.pillars[0].objectives[0].achievements[0].text = "Done. Twice."
    diff = redline_documents(doc, changed)
    assert diff.changed and "<ins> Twice.</ins>" in str(diff.html())
