"""The import, compile and demo commands, as a user runs them (both backends)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import docx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import REPORT_2021

runner = CliRunner()


def rows_in_database(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            return sum(
                connection.execute(
                    sa.select(sa.func.count()).select_from(sa.table(table))
                ).scalar_one()
                for table in tables
                if table != "alembic_version"
            )
    finally:
        engine.dispose()


def test_import_prints_one_json_object_of_counts(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["import", str(REPORT_2021), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert set(counts) == {
        "pillars",
        "objectives",
        "actions",
        "achievements",
        "further_work",
        "milestones",
        "links",
        "agencies",
    }
    assert all(isinstance(value, int) for value in counts.values())
    assert counts["milestones"] == 32
    again = runner.invoke(app, ["import", str(REPORT_2021)])
    assert again.exit_code == 0
    assert "Nothing changed" in again.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"\xff\xfePlan\n", "not UTF-8"),
        (b"", "the file is empty"),
        (b"A title\nA paragraph without any pillar.\n", "no pillars found"),
    ],
)
def test_bad_input_is_a_clear_error_and_leaves_the_database_untouched(
    env: dict[str, str], tmp_path: Path, content: bytes | None, message: str
) -> None:
    first = runner.invoke(app, ["import", str(REPORT_2021)])
    assert first.exit_code == 0
    stored = rows_in_database(env["REPORTCYCLE_DATABASE_URL"])
    path = tmp_path / "report.txt"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert message in result.stderr
    assert str(path) in result.stderr
    assert rows_in_database(env["REPORTCYCLE_DATABASE_URL"]) == stored


def test_an_error_late_in_the_document_imports_nothing(env: dict[str, str], tmp_path: Path) -> None:
    broken = REPORT_2021.read_text("utf-8").replace(
        "Active agencies – Ministry of Business, Innovation & Employment (MBIE)\nKey achievements"
        "\n- February 2021",
        "Active agencies – whoever\nKey achievements\n- February 2021",
    )
    path = tmp_path / "broken.txt"
    path.write_text(broken, "utf-8")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "line 203: active agencies must read" in result.stderr
    assert rows_in_database(env["REPORTCYCLE_DATABASE_URL"]) == 0


def test_compile_writes_every_format(env: dict[str, str], tmp_path: Path) -> None:
    assert runner.invoke(app, ["import", str(REPORT_2021)]).exit_code == 0
    outputs = {}
    for fmt in ("txt", "md", "html", "docx", "csv"):
        path = tmp_path / f"report.{fmt}"
        result = runner.invoke(app, ["compile", "--year", "2021", "--format", fmt, "-o", str(path)])
        assert result.exit_code == 0, result.output
        outputs[fmt] = path.read_bytes()
    assert outputs["txt"].decode().splitlines()[-1] == "Last updated: 19 January 2022"
    assert "Tango i te kaupae muri" in outputs["md"].decode()
    assert outputs["html"].decode().lstrip().lower().startswith("<!doctype html>")
    document = docx.Document(io.BytesIO(outputs["docx"]))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert "Prevention" in headings
    milestones = list(csv.DictReader(io.StringIO(outputs["csv"].decode())))
    assert len(milestones) == 32
    bali = next(row for row in milestones if row["text"].startswith("Bali Process"))
    assert bali["delayed_from"] == "Quarter 3-4 2021"


def test_compile_to_a_path_it_cannot_write_is_a_one_line_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert runner.invoke(app, ["import", str(REPORT_2021)]).exit_code == 0
    folder = tmp_path / "out"
    folder.mkdir()
    blocker = folder / "a-file"
    blocker.write_text("kept", encoding="utf-8")
    for output in (blocker / "report.txt", folder):
        result = runner.invoke(app, ["compile", "--year", "2021", "-o", str(output)])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"error: --output {output}: cannot write it (")
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert blocker.read_text(encoding="utf-8") == "kept"
    assert [p.name for p in folder.iterdir()] == ["a-file"]  # no temporary file left


def test_compile_to_standard_output_and_unknown_year(env: dict[str, str]) -> None:
    assert runner.invoke(app, ["import", str(REPORT_2021)]).exit_code == 0
    result = runner.invoke(app, ["compile", "--year", "2021"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Plan of action implementation reports\n")
    missing = runner.invoke(app, ["compile", "--year", "2019"])
    assert missing.exit_code == 1
    assert "no 2019 report" in missing.stderr
    assert "2021" in missing.stderr


def test_compile_before_any_import_says_what_to_do(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["compile", "--year", "2021"])
    assert result.exit_code == 1
    assert "import a report first" in result.stderr


def test_info_shows_the_data_directory(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    assert env["REPORTCYCLE_DATA_DIR"] in result.stdout


@pytest.mark.parametrize(
    "command",
    [[], ["info"], ["import"], ["compile"], ["demo"], ["db"], ["db", "upgrade"]],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def _commands() -> list[list[str]]:
    """Every command and group of the app, as the words that name it."""
    import typer

    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


# Commands that take arguments or change something: their help shows how to call them.
WITH_EXAMPLE = {
    "import", "compile", "agency add", "agency contact add", "agency contacts import",
    "milestone list", "milestone lead", "cycle open", "cycle status", "cycle resend",
    "cycle deadline", "cycle compile", "cycle approve", "cycle publish", "cycle audit",
    "sweep", "coordinator add",
}  # fmt: skip


def test_every_command_and_group_has_help_and_the_main_ones_an_example() -> None:
    commands = _commands()
    names = {" ".join(path) for path in commands}
    assert names >= WITH_EXAMPLE, WITH_EXAMPLE - names
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        rest = result.stdout.partition("Usage: reportcycle")[2]
        description = rest.split("\n", 1)[1].split("╭", 1)[0]
        assert rest and description.strip(), path
        if " ".join(path) in WITH_EXAMPLE:
            assert f"Example: reportcycle {' '.join(path)} " in result.stdout, path
    # The cycle group's summary names its review commands too.
    assert "publish" in runner.invoke(app, ["--help"]).stdout.split("cycle", 1)[1]


@pytest.mark.parametrize("args", [["serve", "--port", "70000"], ["web", "--port", "0"],
                                  ["worker", "--concurrency", "0"]])  # fmt: skip
def test_a_port_or_concurrency_out_of_range_is_refused_before_starting(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # --port 99999 used to reach uvicorn and end in an OverflowError traceback. Should the
    # check be missing, nothing is started: the test fails instead of running a server.
    from cli import ops_commands

    def never(**_options: object) -> int:
        raise AssertionError(f"{args} started something")

    for name in ("serve", "run_web", "run_worker"):
        monkeypatch.setattr(ops_commands, name, never)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.output and "Traceback" not in result.output


def test_an_unreachable_or_unsupported_database_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import settings as settings_module

    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path / "data"))
    for url, expected in (
        # Nothing listens on port 1; the driver's message spreads over two lines.
        ("postgresql+psycopg://rc:hunter22@127.0.0.1:1/rc", "error: cannot reach the database: "),
        (
            "mysql://rc:hunter22@127.0.0.1/rc",
            "REPORTCYCLE_DATABASE_URL: mysql:// is not a supported",
        ),
    ):
        monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", url)
        settings_module.get_settings.cache_clear()
        result = runner.invoke(app, ["agency", "list"])
        settings_module.get_settings.cache_clear()
        assert result.exit_code == 1, result.output
        assert expected in result.stderr and "hunter22" not in result.stderr
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == (1 if "reach" in expected else 2), lines  # "invalid settings:" + one
