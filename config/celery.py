"""Celery's configuration, from the one Settings object.

As Celery's docs advise for Redis (see the "Known pitfalls" in the design notes):

- acks late with reject on worker lost: a task whose worker dies is delivered again, and
  ``models.delivery`` makes that safe (a claimed row is not sent twice);
- prefetch 1: a worker holds one task at a time, the others stay in Redis for other workers;
- the task time limit, and every retry delay, stay below the broker's visibility timeout, or
  Redis would hand the same task to a second worker while the first still holds it
  (``Settings`` refuses such values at start);
- no long ETAs: reminders are decided by dates in the database at each sweep;
- no result backend: the database records every outcome.

Without ``REPORTCYCLE_BROKER_URL`` the broker is kombu's filesystem transport under the data
directory (embedded mode, no server). It has no redelivery: a task lost with its worker is
found again by the next sweep, which re-enqueues rows left pending, retrying or stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.settings import Settings

SEND_TASK = "reportcycle.send_notification"
# The sweep's messages go out in batches: one task, one database connection and one SMTP
# connection for several messages (a task per message costs about as much as its message).
SEND_BATCH_TASK = "reportcycle.send_notifications"
# Small enough that the workers share a sweep's messages and that a batch ends well inside
# its time limit; large enough that the task's own cost is spread thin.
SEND_BATCH_SIZE = 25
SWEEP_TASK = "reportcycle.sweep"
COMPILE_DUE_TASK = "reportcycle.compile_due"


def soft_time_limit(settings: Settings) -> int:
    """A little before the hard limit, so a slow send can give up cleanly."""
    hard = settings.task_time_limit_seconds
    return max(1, hard - max(2, hard // 10))


def batch_time_budget(settings: Settings) -> float:
    """Seconds a batch may spend starting messages; the rest go on in a new batch. A third of
    the time limit: the last message started may still wait for a slow server."""
    return settings.task_time_limit_seconds / 3


def filesystem_broker_folders(settings: Settings) -> dict[str, Path]:
    root = settings.data_dir / "broker"
    return {
        # One machine: producers write where consumers read.
        "data_folder_in": root / "queue",
        "data_folder_out": root / "queue",
        "processed_folder": root / "processed",
        "control_folder": root / "control",
    }


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    if not settings.broker_url:
        return {name: str(path) for name, path in filesystem_broker_folders(settings).items()}
    visibility = settings.broker_visibility_timeout_seconds
    options: dict[str, Any] = {
        "visibility_timeout": visibility,
        # Look for tasks orphaned by a dead worker often enough to honour the timeout
        # (kombu's default scans every 10 x 10 s).
        "unacked_restore_interval": max(1, min(10, visibility // 10)),
        "unacked_restore_throttle": 1,
    }
    if settings.broker_key_prefix:
        options["global_keyprefix"] = settings.broker_key_prefix
    return options


def celery_config(settings: Settings) -> dict[str, Any]:
    """The ``app.conf`` values of the reportcycle Celery app."""
    interval = settings.sweep_interval_seconds
    return {
        "broker_url": settings.broker_url or "filesystem://",
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "enable_utc": True,
        "timezone": "UTC",
        "task_default_queue": settings.task_queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit_seconds,
        "task_soft_time_limit": soft_time_limit(settings),
        # A task running when the broker connection drops is delivered again elsewhere:
        # stop ours rather than run it twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "sweep": {
                "task": SWEEP_TASK,
                "schedule": float(interval),
                # A sweep queued behind a long outage is useless once the next one is due.
                "options": {"expires": float(interval)},
            },
            # Compiles a cycle's draft once its deadline passes or every request is in.
            "compile_due": {
                "task": COMPILE_DUE_TASK,
                "schedule": float(interval),
                "options": {"expires": float(interval)},
            },
        },
    }


def retry_countdown(settings: Settings, retries: int) -> int:
    """Exponential backoff capped below the visibility timeout: 30 s, 60 s, 120 s … 900 s."""
    delay = settings.retry_backoff_seconds * 2 ** min(retries, 20)
    return int(min(delay, settings.retry_backoff_max_seconds))
