"""``reportcycle demo``: a whole reporting cycle on the embedded default, on a fresh machine.

It imports the bundled real 2021 report into a fresh SQLite database under ``--out``, plays
the 2022 cycle with a simulated clock (``cli.demo_year``, scripted by ``cli.demo_script``) and
prints where everything is. It needs no server and never touches the real data directory.
Running it again starts over in the same folder.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cli.common import console, fail
from cli.plan_commands import BUNDLED_REPORT

# Marks a folder as the demo's own, so a second run may clear what the first one wrote.
MARKER = ".reportcycle-demo"
# What a run writes under --out (and a second run removes first).
DEMO_FILES = ("reportcycle.db", "reportcycle.db-wal", "reportcycle.db-shm", "secret_key")
DEMO_FOLDERS = ("outbox", "drafts", "published")


def prepare_folder(out: Path) -> None:
    """Make ``out`` ready for a fresh run: create it, or clear the previous run's files.

    A folder that holds other things and no marker is refused: the demo deletes only what it
    wrote itself."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        fail(
            f"--out {out} is not empty and was not made by reportcycle demo; "
            "choose a new or empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in DEMO_FILES:
        (out / name).unlink(missing_ok=True)
    for name in DEMO_FOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
    (out / MARKER).write_text(
        "Written by reportcycle demo; running it again replaces this folder's demo files.\n",
        encoding="utf-8",
    )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _formats(paths: Iterable[Path]) -> str:
    return ", ".join(p.suffix.lstrip(".") for p in paths)


def demo_command(
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for the demo's database, outbox and reports."),
    ] = Path("reportcycle-demo"),
) -> None:
    """Play a whole 2022 reporting cycle on the bundled real 2021 report, with no services.

    A fresh SQLite database, demo contacts and a simulated clock, all under --out.

    Sweeps send reminders, slip notices and an escalation as .eml files to --out/outbox.

    Agencies answer through the real form; the coordinator asks for changes, then publishes.

    Running it again starts over in the same folder.
    """
    from cli.demo_browser import DemoError
    from cli.demo_year import DemoYear

    started = time.perf_counter()
    out = out.expanduser().resolve()
    prepare_folder(out)
    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        console.print(f"[bold]{step:>2}.[/bold] {escape(text)}")

    console.print(
        f"reportcycle demo: the {BUNDLED_REPORT.name} report's 2022 cycle, "
        f"played in {escape(_shown(out))}/"
    )
    try:
        result = DemoYear(out, say).run(BUNDLED_REPORT.read_text(encoding="utf-8"))
    except DemoError as exc:
        fail(f"the demo stopped: {exc}")
    seconds = time.perf_counter() - started

    console.print()
    console.print("[bold]Where everything is[/bold]")
    total = sum(result.messages.values())
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(result.messages.items()))
    console.print(f"  outbox ({total} messages, .eml): {escape(_shown(result.outbox))}/")
    console.print(f"    {kinds}")
    console.print("  draft versions of the 2022 report:")
    for draft in result.drafts:
        first = draft.files[0]
        stem = first.with_suffix("")
        console.print(
            f"    version {draft.number} ({draft.state}, compiled by {escape(draft.created_by)}):"
            f" {escape(_shown(stem))}.{{{_formats(draft.files)}}}"
        )
    if result.published_dir is not None:
        console.print(
            f"  the published 2022 report (version {result.published_version}): "
            f"{escape(_shown(result.published_dir))}/"
        )
        for path in result.published:
            what = "the static HTML page" if path.name == "index.html" else path.suffix[1:]
            if path.name == "SHA256SUMS":
                what = "checksums"
            console.print(f"    {what:<22} {escape(path.name)}")
    console.print(f"  the database: {escape(_shown(result.database))}")
    console.print(
        f"  browse it: REPORTCYCLE_DATA_DIR={escape(_shown(out))} reportcycle serve "
        "(set the coordinator's password first with: "
        f"REPORTCYCLE_DATA_DIR={escape(_shown(out))} reportcycle coordinator add "
        "coordinator@example.govt.nz)"
    )
    console.print(f"Done in {seconds:.1f} s.")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
