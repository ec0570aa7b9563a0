"""The cycle and agency commands end to end: a real database per backend (the ``env``
fixture), delivery in-process to the .eml outbox, parsed back."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from models.db import make_engine
from models.tokens import hash_token
from tests.smtp_server import read_flowed

BASE = "https://reports.example.govt.nz"
LINK = re.compile(re.escape(BASE) + r"/r/([A-Za-z0-9_-]+)")
REPORT = Path(__file__).resolve().parent.parent / "models" / "data" / "nz-plan-of-action-2021.txt"


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REPORTCYCLE_BASE_URL", BASE)
    monkeypatch.delenv("REPORTCYCLE_MAIL_URL", raising=False)
    monkeypatch.delenv("REPORTCYCLE_OUTBOX_DIR", raising=False)
    return CliRunner()


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    output = result.output  # stdout and stderr together
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{output}"
    return output


def outbox(env: dict[str, str]) -> list[EmailMessage]:
    directory = Path(env["REPORTCYCLE_DATA_DIR"]) / "outbox"
    files = sorted(directory.glob("*.eml")) if directory.exists() else []
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def body(message: EmailMessage) -> str:
    """The plain text as a mail client shows it (format=flowed paragraphs joined)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None and part.get_param("format") == "flowed"
    return read_flowed(str(part.get_content()).replace("\r\n", "\n"))


def count(env: dict[str, str], table: str) -> int:
    engine = make_engine(env["REPORTCYCLE_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = sa.select(sa.func.count()).select_from(sa.table(table))
            return int(connection.execute(rows).scalar_one())
    finally:
        engine.dispose()


def _prepare(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", str(REPORT))
    run(cli, "agency", "contact", "add", "MBIE", "alice@mbie.govt.nz", "--name", "Alice")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "agency,email,name,notify_url,coordinator\n"
        "Police,bob@police.govt.nz,Bob,,no\n"
        "MBIE,carol@coordination.govt.nz,Carol,,yes\n",
        encoding="utf-8",
    )
    imported = run(cli, "agency", "contacts", "import", str(contacts))
    assert "2 contact(s) added, 0 updated, 0 unchanged" in imported


def test_cycle_open_dry_run_then_open_send_status_sweep_and_resend(
    cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    _prepare(cli, tmp_path)
    open_args = ("cycle", "open", "2022", "--deadline", "2022-12-02", "--now", "2022-02-01")

    dry = run(cli, *open_args, "--dry-run")
    assert "would open the 2022 cycle" in dry
    assert "MBIE       update request to alice@mbie.govt.nz" in dry
    assert "NZP        update request to bob@police.govt.nz" in dry
    assert "DIA        no contacts" in dry
    # INZ and ENZ are business units of MBIE with no contacts of their own: MBIE's contact
    # reads for them, each with its own request and link.
    assert "INZ        update request to alice@mbie.govt.nz (through MBIE)" in dry
    assert "ENZ        update request to alice@mbie.govt.nz (through MBIE)" in dry
    assert "dry run: nothing written, nothing sent" in dry
    assert count(env, "cycle") == 0 and count(env, "notification") == 0
    assert outbox(env) == []

    opened = run(cli, *open_args)
    assert "delivered: 4 sent, 0 to retry, 0 failed" in opened
    mails = outbox(env)
    assert sorted(str(m["To"]) for m in mails) == [
        "Alice <alice@mbie.govt.nz>",
        "Alice <alice@mbie.govt.nz>",
        "Alice <alice@mbie.govt.nz>",
        "Bob <bob@police.govt.nz>",
    ]
    inz = next(m for m in mails if str(m["Subject"]).startswith("Please send INZ's"))
    inz_text = body(inz)
    assert "because Immigration New Zealand (INZ) is part of MBIE" in inz_text
    assert "This link is just for INZ" in inz_text
    inz_token = LINK.search(inz_text)
    alice = next(m for m in mails if str(m["Subject"]).startswith("Please send MBIE's"))
    assert alice["Subject"] == "Please send MBIE's 2022 progress update by Friday 2 December 2022"
    text = body(alice)
    assert "Quarter 1 2022: Complete research programme" in text
    token = LINK.search(text)
    assert token is not None
    engine = make_engine(env["REPORTCYCLE_DATABASE_URL"])
    with engine.connect() as connection:
        hashes = connection.execute(sa.text("SELECT token_hash FROM accesstoken")).scalars().all()
    engine.dispose()
    assert hash_token(token.group(1)) in hashes and token.group(1) not in hashes
    assert "is part of" not in text  # MBIE's own request says nothing of routing
    assert inz_token is not None and inz_token.group(1) != token.group(1)
    assert hash_token(inz_token.group(1)) in hashes

    again = run(cli, *open_args, code=1)
    assert "the 2022 cycle of" in again and "was already opened on 2022-02-01" in again

    status = run(cli, "cycle", "status", "2022")
    assert re.search(r"MBIE\s+│\s+sent", status)
    assert re.search(r"DIA\s+│\s+not sent \(no", status)

    before = count(env, "notification")
    preview = run(cli, "sweep", "--now", "2022-03-01", "--dry-run")
    assert "would send" in preview and "reminder   to alice@mbie.govt.nz" in preview
    assert count(env, "notification") == before and count(env, "notificationitem") == 0

    # A message an earlier run left to retry (say the mail server was down) is retried by
    # the next sweep: cron alone is enough, no worker needed.
    engine = make_engine(env["REPORTCYCLE_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE notification SET state = 'retrying', sent_at = NULL, claimed_at = :at "
                "WHERE recipient = 'bob@police.govt.nz'"
            ),
            {"at": datetime(2022, 2, 1, tzinfo=UTC)},
        )
    engine.dispose()
    swept = run(cli, "sweep", "--now", "2022-03-01")
    assert "also retrying 1 earlier message(s)" in swept
    bobs = [m for m in outbox(env) if "bob" in str(m["To"])]
    assert [str(m["Subject"]) for m in bobs] == [
        "Please send NZP's 2022 progress update by Friday 2 December 2022"
    ] * 2
    # MBIE and its business units INZ and ENZ lead the Quarter 1 2022 milestones; three
    # December 2021 ones have slipped. Alice reads for all three, one digest each.
    assert "claimed 4 message(s)" in swept and "3 milestone(s) newly slipped" in swept
    assert "reminder   to alice@mbie.govt.nz for INZ: " in swept
    assert "reminder   to alice@mbie.govt.nz for ENZ: " in swept
    reminders = [m for m in outbox(env) if str(m["Subject"]).startswith("Reminder:")]
    assert [str(m["To"]) for m in reminders] == ["Alice <alice@mbie.govt.nz>"] * 3
    mbie = next(m for m in reminders if "MBIE milestone" in str(m["Subject"]))
    assert "Quarter 1 2022: Complete research programme" in body(mbie)
    inz = next(m for m in reminders if "INZ milestone" in str(m["Subject"]))
    assert "is part of MBIE and has no contact of its own" in body(inz)
    slipped = [m for m in outbox(env) if "slipped" in str(m["Subject"])]
    assert [str(m["To"]) for m in slipped] == ["Carol <carol@coordination.govt.nz>"]
    assert "claimed 0 message(s)" in run(cli, "sweep", "--now", "2022-03-01T10:00")
    assert "Saturday 2022-03-05 is a weekend day" in run(cli, "sweep", "--now", "2022-03-05")

    resent = run(cli, "cycle", "resend", "2022", "mbie", "--now", "2022-03-02")
    assert "MBIE: 2 earlier link(s) revoked" in resent
    new = [m for m in outbox(env) if str(m["Subject"]).startswith("Your new link")]
    assert [str(m["To"]) for m in new] == ["Alice <alice@mbie.govt.nz>"]
    assert "Any earlier links no longer work" in body(new[0])

    assert "DIA has no contacts" in run(cli, "cycle", "resend", "2022", "DIA", code=1)
    assert "has not been opened" in run(cli, "cycle", "status", "2023", code=1)
    assert "--now: not an ISO 8601" in run(cli, "sweep", "--now", "tomorrow", code=1)


def test_agency_list_and_contacts_with_clear_errors(
    cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    run(cli, "import", str(REPORT))
    listing = run(cli, "agency", "list")
    assert re.search(r"INZ\s+│\s+Immigration New Zealand\s+│\s+MBIE", listing)

    assert "not an email address" in run(
        cli, "agency", "contact", "add", "MBIE", "alice at mbie", code=1
    )
    assert "no agency 'XYZ'" in run(cli, "agency", "contact", "add", "XYZ", "a@b.govt.nz", code=1)
    secret = "s3cr3t-token-value"
    refused = run(
        cli,
        "agency",
        "contact",
        "add",
        "MBIE",
        "alice@mbie.govt.nz",
        "--notify-url",
        f"nosuchservice://user:{secret}@host/path",
        code=1,
    )
    assert "nosuchservice://…" in refused and secret not in refused
    added = run(
        cli,
        "agency",
        "contact",
        "add",
        "MBIE",
        "alice@mbie.govt.nz",
        "--notify-url",
        f"json://user:{secret}@hooks.example.org/mbie",
    )
    assert "(with a notify URL)" in added and secret not in added
    duplicate = run(cli, "agency", "contact", "add", "mbie", "Alice@MBIE.govt.nz", code=1)
    assert "alice@mbie.govt.nz is already a contact of MBIE" in duplicate

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "agency,email,name,notify_url,coordinator\n"
        "NZP,bob@police.govt.nz,Bob,,no\n"
        "NOPE,x@y.govt.nz,,,no\n"
        "OT,not-an-address,,,maybe\n"
        f"OT,olive@ot.govt.nz,,bogus://u:{secret}@h,no\n",
        encoding="utf-8",
    )
    failed = run(cli, "agency", "contacts", "import", str(bad), code=1)
    assert "nothing imported" in failed
    assert "line 3, field \"agency\": no agency 'NOPE'" in failed
    assert 'line 4, field "email"' in failed and 'line 4, field "coordinator"' in failed
    assert 'line 5, field "notify_url"' in failed and secret not in failed
    assert count(env, "contact") == 1  # only alice: nothing of the file was written

    header = tmp_path / "header.csv"
    header.write_text("email,agency\nbob@police.govt.nz,NZP\n", encoding="utf-8")
    assert "line 1: the header must be" in run(
        cli, "agency", "contacts", "import", str(header), code=1
    )
    listing = run(cli, "agency", "list")
    assert re.search(r"MBIE\s+│.*│\s+1\s+│\s+\d+", listing)

    good = tmp_path / "good.csv"
    good.write_text(
        "agency,email,name,notify_url,coordinator\nNZP,bob@police.govt.nz,Bob,,no\n",
        encoding="utf-8",
    )
    assert "1 contact(s) added, 0 updated, 0 unchanged" in run(
        cli, "agency", "contacts", "import", str(good)
    )
    assert "0 contact(s) added, 0 updated, 1 unchanged" in run(
        cli, "agency", "contacts", "import", str(good)
    )


def test_a_year_already_reported_cannot_be_opened(cli: CliRunner, env: dict[str, str]) -> None:
    # Opening 2021 on top of the imported 2021 report used to be accepted, and compiling that
    # cycle then replaced the published report's entries with the draft's.
    run(cli, "import", str(REPORT))
    published = run(cli, "compile", "--year", "2021")
    for year in ("2021", "2020"):
        refused = run(
            cli, "cycle", "open", year, "--deadline", "2022-12-02", "--now", "2022-02-01", code=1
        )
        assert refused.startswith(f"error: {year}: ") and "reports up to 2021" in refused
        assert "the next is 2022" in refused and "Traceback" not in refused
    assert count(env, "cycle") == 0 and count(env, "updaterequest") == 0
    assert run(cli, "compile", "--year", "2021") == published
    opened = run(cli, "cycle", "open", "2022", "--deadline", "2022-12-02", "--now", "2022-02-01")
    assert "opened the 2022 cycle" in opened


def test_now_out_of_range_is_a_one_line_error(cli: CliRunner, env: dict[str, str]) -> None:
    run(cli, "import", str(REPORT))
    for now in ("0001-01-01", "0001-01-01T05:00", "not-a-date"):
        refused = run(cli, "sweep", "--now", now, "--dry-run", code=1)
        assert refused.startswith("error: --now: ") and repr(now) in refused, refused
        assert len(refused.strip().splitlines()) == 1


def test_a_mail_url_that_cannot_send_stops_before_anything_is_written(
    cli: CliRunner, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # It used to open the cycle, store its messages, then fail with a traceback while
    # sending them.
    from config import settings as settings_module

    run(cli, "import", str(REPORT))
    run(cli, "agency", "contact", "add", "MBIE", "alice@mbie.govt.nz")
    secret = "S3cret-pw"
    monkeypatch.setenv("REPORTCYCLE_MAIL_URL", f"json://ops:{secret}@hooks.example.org/")
    settings_module.get_settings.cache_clear()
    for args in (
        ("cycle", "open", "2022", "--deadline", "2022-12-02", "--now", "2022-02-01"),
        ("sweep", "--now", "2022-02-01"),
    ):
        refused = run(cli, *args, code=1)
        assert refused.startswith("error: REPORTCYCLE_MAIL_URL must be an Apprise mailto://")
        assert "nothing was done" in refused and secret not in refused
        assert len(refused.strip().splitlines()) == 1
    assert count(env, "cycle") == 0 and count(env, "notification") == 0

    monkeypatch.delenv("REPORTCYCLE_MAIL_URL")
    settings_module.get_settings.cache_clear()
    opened = run(cli, "cycle", "open", "2022", "--deadline", "2022-12-02", "--now", "2022-02-01")
    assert "delivered: 3 sent" in opened  # MBIE, and INZ and ENZ through MBIE


def test_contacts_import_file_problems_are_one_line_errors(
    cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    run(cli, "import", str(REPORT))
    header = "agency,email,name,notify_url,coordinator\n"
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        (header + "MBIE,a@mbie.govt.nz,Ana,,no\nOT,r@ot.govt.nz,Renée,,no\n").encode("latin-1")
    )
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text(header.replace(",", ";") + "MBIE;a@mbie.govt.nz;;;no\n", encoding="utf-8")
    cases = {
        tmp_path: "not a file",  # a folder used to say "no such file"
        tmp_path / "missing.csv": "no such file",
        latin1: "line 3: not UTF-8 text (byte 0xe9)",
        semicolons: "the file must be comma-separated",
    }
    for path, expected in cases.items():
        refused = run(cli, "agency", "contacts", "import", str(path), code=1)
        assert refused.startswith(f"error: {path}: ") and expected in refused, refused
        assert len(refused.strip().splitlines()) == 1
    assert count(env, "contact") == 0
