"""The ``smtp_server`` fixture: a real aiosmtpd SMTP server per test (see tests/smtp_server.py).

Registered in tests/conftest.py, so every test module can ask for it::

    def test_something(smtp_server: SmtpServer) -> None:
        settings = Settings(mail_url=smtp_server.url, ...)
        ...
        [mail] = smtp_server.wait_for(1)
        assert mail.subject == ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp_server import SmtpServer


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server on a free port, stopped after the test."""
    with SmtpServer() as server:
        yield server
