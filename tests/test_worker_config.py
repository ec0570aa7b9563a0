"""The Celery configuration keeps Celery's Redis advice, whatever the settings say."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.celery import SWEEP_TASK, celery_config, retry_countdown, soft_time_limit
from config.settings import Settings


def redis_settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/5", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"broker_visibility_timeout_seconds": 30, "task_time_limit_seconds": 20,
         "retry_backoff_max_seconds": 25},
        {"task_time_limit_seconds": 3599, "retry_backoff_max_seconds": 3599},
    ],
)  # fmt: skip
def test_limits_and_every_retry_delay_stay_below_the_visibility_timeout(
    tmp_path: Path, values: dict[str, int]
) -> None:
    settings = redis_settings(tmp_path, **values)
    config = celery_config(settings)
    visibility = config["broker_transport_options"]["visibility_timeout"]

    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_soft_time_limit"] < config["task_time_limit"] < visibility
    assert soft_time_limit(settings) == config["task_soft_time_limit"]
    delays = [retry_countdown(settings, retries) for retries in range(100)]
    assert max(delays) == settings.retry_backoff_max_seconds < visibility
    assert delays == sorted(delays)
    # Orphaned tasks are looked for several times per visibility timeout.
    options = config["broker_transport_options"]
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= max(
        1, visibility // 10
    )


def test_settings_refuse_a_time_limit_at_or_above_the_visibility_timeout(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        redis_settings(tmp_path, broker_visibility_timeout_seconds=60, task_time_limit_seconds=60)

    message = str(raised.value)
    assert "REPORTCYCLE_TASK_TIME_LIMIT_SECONDS must be below" in message
    assert "REPORTCYCLE_BROKER_VISIBILITY_TIMEOUT_SECONDS (60)" in message


def test_beat_sweeps_at_the_configured_interval(tmp_path: Path) -> None:
    config = celery_config(redis_settings(tmp_path, sweep_interval_seconds=120))

    entry = config["beat_schedule"]["sweep"]
    assert entry["task"] == SWEEP_TASK
    assert entry["schedule"] == 120
    assert entry["options"]["expires"] <= 120


def test_without_a_broker_url_the_filesystem_broker_lives_in_the_data_dir(
    tmp_path: Path,
) -> None:
    config = celery_config(Settings(data_dir=tmp_path))

    assert config["broker_url"] == "filesystem://"
    folders = config["broker_transport_options"]
    assert folders["data_folder_in"] == folders["data_folder_out"]
    for name in ("data_folder_in", "processed_folder", "control_folder"):
        assert Path(folders[name]).is_relative_to(tmp_path / "broker")


def test_a_key_prefix_isolates_deployments_sharing_a_redis(tmp_path: Path) -> None:
    config = celery_config(redis_settings(tmp_path, broker_key_prefix="staging:"))

    assert config["broker_transport_options"]["global_keyprefix"] == "staging:"
