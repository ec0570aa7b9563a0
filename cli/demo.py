"""``reportcycle demo``: the main job on the embedded default, on a fresh machine.

For now: import the bundled real 2021 report into a fresh SQLite database and compile it
back in every format. (The whole 2022 cycle joins it as the cycle engine lands.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from cli.common import console
from cli.plan_commands import BUNDLED_REPORT, write_atomically
from models.clock import system_clock
from models.compiler import build_document
from models.db import make_engine, upgrade
from models.importer import import_report
from models.render import Format, render


def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the demo's database and outputs.")
    ] = Path("reportcycle-demo"),
) -> None:
    """Import the bundled 2021 report into a fresh database and compile it in every format."""
    out.mkdir(parents=True, exist_ok=True)
    database = out / "demo.db"
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    console.print(f"1. Importing the published 2021 report ({BUNDLED_REPORT.name})")
    with Session(engine) as session:
        summary = import_report(session, BUNDLED_REPORT.read_text("utf-8"), system_clock())
        session.commit()
        counts = ", ".join(
            f"{value} {name.replace('_', ' ')}" for name, value in summary.counts().items()
        )
        console.print(f"   {counts}")
        doc = build_document(session, summary.plan_id, summary.year)
    console.print("2. Compiling it back")
    for fmt in Format:
        path = out / f"report-{summary.year}.{fmt.value}"
        write_atomically(path, render(doc, fmt))
        console.print(f"   {path}")
    engine.dispose()
    console.print(f"Done. Database: {database}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
