"""Three `reportcycle sweep` processes at once on the same database: every reason is claimed
once and every message written once (the CLI delivers to the .eml outbox)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models.cycles import open_cycle
from models.db import make_engine, upgrade
from models.tables import AuditEvent, Notification, NotificationItem
from tests.cycle_support import build_plan, nz


def test_sweeps_in_separate_processes_claim_and_send_everything_once(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPORTCYCLE_MAIL_URL", raising=False)
    monkeypatch.delenv("REPORTCYCLE_OUTBOX_DIR", raising=False)
    engine = make_engine(env["REPORTCYCLE_DATABASE_URL"])
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        built = build_plan(session)
        built.contacts["alice"].notify_url = None  # keep this test off the network
        session.add(built.contacts["alice"])
        open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
        session.commit()  # the update requests stay pending: the sweeps pick them up too

    command = [sys.executable, "-m", "cli.main", "sweep", "--now", "2022-04-01"]
    processes = [
        subprocess.Popen(
            command,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], "\n".join(outputs)

    with Session(engine) as session:
        rows = session.exec(select(Notification)).all()
        by_kind = Counter(n.kind for n in rows)
        # Update requests to alice, bob and olive; slip notices to alice (2), bob (1) and
        # carol (4, with the December 2021 one).
        assert by_kind == {"update_request": 3, "slipped": 3}
        items = session.exec(select(sa.func.count()).select_from(NotificationItem)).one()
        assert items == 7
        flags = session.exec(select(AuditEvent).where(AuditEvent.action == "milestone.slipped"))
        assert len(flags.all()) == 4
        assert {n.state.value for n in rows} == {"sent"}
    engine.dispose()

    files = sorted((Path(env["REPORTCYCLE_DATA_DIR"]) / "outbox").glob("*.eml"))
    ids = [int(re.search(r"-n(\d+)-", f.name).group(1)) for f in files]  # type: ignore[union-attr]
    assert sorted(ids) == sorted(n.id or 0 for n in rows), "each message written exactly once"
    claimed = [int(m) for out in outputs for m in re.findall(r"claimed (\d+) message", out)]
    assert sorted(claimed) == [0, 0, 3]
