"""Embedded mode: no Redis, no mail server. A real ``celery -A worker.app worker`` on kombu's
filesystem broker under the data directory, writing the messages as .eml files to the outbox
through the same Apprise path."""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from pathlib import Path

import pytest

from config.celery import SEND_TASK
from models.tables import DeliveryState
from tests.test_worker import World, build_world
from tests.worker_process import WorkerProcess


# The embedded mode is SQLite and a filesystem broker by definition (server mode: test_worker).
@pytest.mark.parametrize("backend", ["sqlite"])
def test_embedded_worker_writes_the_messages_to_the_outbox(
    db_url: str, report_2021_text: str, tmp_path: Path
) -> None:
    world: World = build_world(db_url, report_2021_text)
    data_dir = tmp_path / "data"
    env = {
        "REPORTCYCLE_DATABASE_URL": db_url,
        "REPORTCYCLE_DATA_DIR": str(data_dir),
        "REPORTCYCLE_BROKER_URL": "",
        "REPORTCYCLE_MAIL_URL": "",
        "REPORTCYCLE_MAIL_FROM": "Plan of Action <reportcycle@example.govt.nz>",
        "REPORTCYCLE_BASE_URL": "https://reports.example.govt.nz",
        "REPORTCYCLE_TASK_QUEUE": f"rc-embedded-{uuid.uuid4().hex[:8]}",
    }
    try:
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            for notification_id in world.update_request_ids:
                worker.enqueue(SEND_TASK, notification_id)
            deadline = time.monotonic() + 60
            while not world.all_settled() and time.monotonic() < deadline:
                time.sleep(0.1)
            log = worker.log()
    finally:
        world.engine.dispose()

    assert set(world.states().values()) == {DeliveryState.SENT}, log
    outbox = data_dir / "outbox"
    files = sorted(path.name for path in outbox.glob("*.eml"))
    assert files == sorted(
        f"{world.notification(n).claimed_at:%Y%m%dT%H%M%S}-n{n}-update_request.eml"
        for n in world.update_request_ids
    )
    recipients = set()
    for path in outbox.glob("*.eml"):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        recipients.add(str(mail["To"]))
        assert str(mail["Subject"]).startswith("Please send ")
        assert str(mail["From"]) == "Plan of Action <reportcycle@example.govt.nz>"
        text = mail.get_body(preferencelist=("plain",))
        html = mail.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        assert "https://reports.example.govt.nz/r/" in text.get_content()
        assert "https://reports.example.govt.nz/r/" in html.get_content()
    assert recipients == {
        "Sam <sam.tipene@police.example.govt.nz>",
        "plan.team@mbie.example.govt.nz",
    }
