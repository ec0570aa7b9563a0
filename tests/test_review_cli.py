"""The review commands end to end on a real database per backend (the ``env`` fixture):
coordinator add, cycle compile, approve, publish (messages to the .eml outbox) and audit."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

BASE = "https://reports.example.govt.nz"
REPORT = Path(__file__).resolve().parent.parent / "models" / "data" / "nz-plan-of-action-2021.txt"
PASSWORD = "a long enough password"


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REPORTCYCLE_BASE_URL", BASE)
    monkeypatch.delenv("REPORTCYCLE_MAIL_URL", raising=False)
    monkeypatch.delenv("REPORTCYCLE_OUTBOX_DIR", raising=False)
    return CliRunner()


def run(runner: CliRunner, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def test_compile_approve_publish_and_audit_from_the_command_line(
    cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    run(cli, "import", str(REPORT))
    run(cli, "agency", "contact", "add", "NZP", "sam@police.govt.nz")
    run(cli, "cycle", "open", "2022", "--deadline", "2023-02-28", "--now", "2022-11-01")

    compiled = run(cli, "cycle", "compile", "2022", "--now", "2023-03-01")
    assert "compiled the 2022 report: draft version 1" in compiled
    # The command it suggests to read the draft works as printed.
    hint = compiled.split("see it with: reportcycle ", 1)[1].split(" (or", 1)[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        run(cli, *hint.split())
    assert "Last updated" in (tmp_path / "report-2022-v1.html").read_text(encoding="utf-8")
    assert "not answered: DIA, ENZ, INZ, MBIE, MFAT, MoJ, NZP, OT" in compiled
    again = run(cli, "cycle", "compile", "2022", "--now", "2023-03-01T12:00")
    assert "unchanged: version 1" in again

    refused = run(cli, "cycle", "approve", "2022", "--by", "ana@mbie.govt.nz", code=1)
    assert "ana@mbie.govt.nz is not a coordinator" in refused
    short = run(
        cli, "coordinator", "add", "ana@mbie.govt.nz", "--password-stdin", code=1, stdin="short\n"
    )
    assert "at least 12 characters" in short
    added = run(
        cli, "coordinator", "add", "Ana@MBIE.govt.nz", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert "added coordinator ana@mbie.govt.nz: can sign in at /dashboard" in added
    # The same email again sets a new password, and says so (it used to print the same
    # "can sign in" line as for a new account).
    reset = run(
        cli, "coordinator", "add", "ana@mbie.govt.nz", "--password-stdin", stdin="x" * 14 + "\n"
    )
    assert "coordinator ana@mbie.govt.nz: new password set" in reset and "added" not in reset
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return PASSWORD

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("getpass.getpass", getpass)
        typed = run(cli, "coordinator", "add", "ana@mbie.govt.nz")
    # Warned before the password is asked for, so a mistaken "add" can still be stopped.
    assert typed.index("ana@mbie.govt.nz is already a coordinator") == 0
    assert prompts == ["Password for ana@mbie.govt.nz: ", "Again: "]

    unapproved = run(
        cli,
        "cycle",
        "publish",
        "2022",
        "--by",
        "ana@mbie.govt.nz",
        "--out",
        str(tmp_path / "site"),
        code=1,
    )
    assert "only an approved version can be published" in unapproved
    approved = run(
        cli, "cycle", "approve", "2022", "--by", "ana@mbie.govt.nz", "--now", "2023-03-02"
    )
    assert "approved version 1 of the 2022 report" in approved
    # An --out that is a file, or under one: a one-line error, and nothing is published.
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    for out in (tmp_path / "a-file", tmp_path / "a-file" / "site"):
        bad_out = run(
            cli, "cycle", "publish", "2022", "--by", "ana@mbie.govt.nz", "--out", str(out), code=1
        )
        assert bad_out.startswith(f"error: --out {out}: ") and "Traceback" not in bad_out
        assert len(bad_out.strip().splitlines()) == 1
    assert "(approved)" in run(cli, "cycle", "status", "2022")
    published = run(
        cli,
        "cycle",
        "publish",
        "2022",
        "--by",
        "ana@mbie.govt.nz",
        "--out",
        str(tmp_path / "site"),
        "--now",
        "2023-03-03",
    )
    assert "published version 1 of the 2022 report" in published
    assert "delivered: 1 sent" in published
    names = sorted(p.name for p in (tmp_path / "site").iterdir())
    assert "index.html" in names and "SHA256SUMS" in names and len(names) == 7

    outbox = Path(env["REPORTCYCLE_DATA_DIR"]) / "outbox"
    mails = [
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        for f in sorted(outbox.glob("*.eml"))
    ]
    notice = [m for m in mails if "has been published" in str(m["subject"])]
    assert len(notice) == 1 and notice[0]["to"] == "sam@police.govt.nz"
    part = notice[0].get_body(preferencelist=("plain",))
    assert part is not None
    assert f"{BASE}/reports/plan-of-action-implementation-reports/2022" in str(part.get_content())

    # The CSV is standard output alone: log lines, if any, go to standard error.
    result = cli.invoke(app, ["cycle", "audit", "2022", "--csv"])
    assert result.exit_code == 0, result.output
    log = result.stdout
    rows = list(csv.reader(io.StringIO(log)))
    assert rows and all(len(row) >= 3 for row in rows), f"not one CSV row per event:\n{log}"
    actions = [row[2] for row in rows][1:]
    for action in ("cycle.opened", "draft.compiled", "report.approved", "report.published"):
        assert action in actions
    table = run(cli, "cycle", "audit", "2022")
    assert "report.published" in table
    # In New Zealand time as on the dashboard (it printed UTC: 2022-10-31 20:00), one column
    # per field, aligned.
    assert table.splitlines()[0] == "2022 cycle: audit log (times in Pacific/Auckland)"
    lines = table.splitlines()[1:]
    assert lines[0].startswith("2022-11-01 09:00 NZDT  cycle.opened ")
    starts = {tuple(m.start() for m in re.finditer(r"\S+(?: \S+)*", line))[:3] for line in lines}
    assert len(starts) == 1, starts
