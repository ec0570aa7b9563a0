"""Commands about the plan and its reports: import, compile."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from cli.common import console, fail, ready_engine
from models.clock import system_clock
from models.compiler import ReportNotFound, build_document
from models.cycles import CycleError, find_plan
from models.render import Format, render
from models.report_text import ImportFormatError

BUNDLED_REPORT = (
    Path(__file__).resolve().parent.parent / "models" / "data" / ("nz-plan-of-action-2021.txt")
)


def read_report_file(path: Path) -> str:
    """The file's text, or a clear error: missing, unreadable, not UTF-8, empty."""
    if not path.exists():
        fail(f"{path}: no such file")
    if not path.is_file():
        fail(f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read it ({exc.strerror})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        fail(
            f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "save it as UTF-8 and try again"
        )
    if not text.strip():
        fail(f"{path}: the file is empty")
    return text


def write_atomically(path: Path, data: bytes) -> None:
    """Write the whole file or nothing (a reader never sees half a report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        # mkstemp makes the file private; a report is as readable as any file we write.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def import_command(
    path: Annotated[Path, typer.Argument(help="A published report in the text format.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object of counts instead.")
    ] = False,
) -> None:
    """Read a published annual report into the database.

    Idempotent: importing the same document again changes nothing. On an error (named with
    its line) nothing is stored.

    Example: reportcycle import models/data/nz-plan-of-action-2021.txt"""
    from models.importer import import_report

    text = read_report_file(path)
    engine = ready_engine()
    with Session(engine) as session:
        try:
            summary = import_report(session, text, system_clock())
            session.commit()
        except ImportFormatError as exc:
            session.rollback()
            fail(f"{path}: {exc}")
    if as_json:
        print(json.dumps(summary.counts()))
        return
    counts = summary.counts()
    console.print(f"Imported the {summary.year} report from {path}:")
    for name, value in counts.items():
        console.print(f"  {name.replace('_', ' '):<13} {value}")
    if summary.objective_reports_written == 0:
        console.print("Nothing changed: this report was already imported.")


def compile_command(
    year: Annotated[int, typer.Option("--year", help="The report's year, e.g. 2021.")],
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
    ] = Format.TXT,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write ('-' for standard output).")
    ] = Path("-"),
    plan: Annotated[
        str | None, typer.Option("--plan", help="Plan slug, when there are several.")
    ] = None,
) -> None:
    """Write a year's report from the database as txt, md, html, docx or csv.

    Example: reportcycle compile --year 2021 --format docx -o report-2021.docx"""
    engine = ready_engine()
    with Session(engine) as session:
        try:
            plan_row = find_plan(session, plan)
            assert plan_row.id is not None
            doc = build_document(session, plan_row.id, year)
        except (CycleError, ReportNotFound) as exc:
            fail(str(exc))
    data = render(doc, fmt)
    if str(output) == "-":
        if fmt in (Format.DOCX,):
            fail("a Word document cannot go to standard output: give -o FILE.docx")
        typer.echo(data.decode("utf-8"), nl=False)
        return
    try:
        write_atomically(output, data)
    except OSError as exc:
        fail(f"--output {output}: cannot write it ({exc.strerror or exc})")
    console.print(f"Wrote the {year} report ({fmt.value}) to {output}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("compile")(compile_command)
