"""The key that signs web sessions.

Server mode: ``REPORTCYCLE_SECRET_KEY`` must be set (every web process must share it, and a
generated one would differ per container). Embedded mode: when it is unset, one key is
generated on first use and kept in the data directory, readable by its owner only, so sessions
survive a restart and two local processes agree on it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from config.settings import ENV_PREFIX, Mode, Settings

KEY_FILE_NAME = "secret_key"
VARIABLE = f"{ENV_PREFIX}SECRET_KEY"
MIN_LENGTH = 32


class SecretKeyError(RuntimeError):
    """The secret key is missing or unusable; the message names the variable or the file."""


def secret_key(settings: Settings) -> str:
    """The session signing key for these settings (see the module docstring)."""
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        if len(value) < MIN_LENGTH:
            raise SecretKeyError(
                f"{VARIABLE} is too short: use at least {MIN_LENGTH} random characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value
    if settings.mode is Mode.SERVER:
        raise SecretKeyError(
            f"{VARIABLE} is not set; server mode requires it (all web processes share it)"
        )
    return _embedded_key(settings.ensure_data_dir() / KEY_FILE_NAME)


def exposed_key_file(path: Path) -> str | None:
    """Why the generated key file at ``path`` must not be used (other users can read it), or
    None: private, or not there yet. ``doctor`` says so before the web app refuses it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (
            f"{path} is readable by others (mode {mode:o}): chmod 600 it, or delete it to make "
            "a new key (every session then ends)"
        )
    return None


def _embedded_key(path: Path) -> str:
    if not path.exists():
        _create_once(path)
    exposed = exposed_key_file(path)
    if exposed is not None:
        raise SecretKeyError(exposed)
    value = path.read_text(encoding="ascii").strip()
    if len(value) < MIN_LENGTH:
        raise SecretKeyError(f"{path} does not hold a usable key; delete it to make a new one")
    return value


def _create_once(path: Path) -> None:
    # Write a private temporary file, then hard-link it into place: link() fails when the key
    # exists, so two processes starting together both end up reading the one winner, and
    # nobody ever reads a half-written key.
    temporary = path.with_name(f".{KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
