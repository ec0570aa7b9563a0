"""Coordinator accounts: argon2id hashes, sign-in checks and the failed-attempt lockout, on the
real databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import Session, select

from models import accounts
from models.tables import Account, AuditEvent

NOW = datetime(2023, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "tēnā koe, this is long enough"


def test_a_password_is_stored_only_as_an_argon2id_hash(session: Session) -> None:
    account = accounts.add_account(session, "Ana@MBIE.govt.nz", PASSWORD, NOW)
    assert account.email == "ana@mbie.govt.nz"
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    created = session.exec(select(AuditEvent).where(AuditEvent.action == "account.created")).one()
    assert created.subject == "account:ana@mbie.govt.nz" and PASSWORD not in str(created.detail)


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("ana@mbie.govt.nz", "short", "at least 12 characters"),
        ("ana@mbie.govt.nz", " " * 20, "must not be blank"),
        ("not an address", PASSWORD, "not an email address"),
    ],
)
def test_bad_accounts_are_refused(
    session: Session, email: str, password: str, message: str
) -> None:
    with pytest.raises(accounts.AccountError, match=message):
        accounts.add_account(session, email, password, NOW)
    assert session.exec(select(Account)).all() == []


def test_adding_an_existing_account_sets_a_new_password(session: Session) -> None:
    accounts.add_account(session, "ana@mbie.govt.nz", PASSWORD, NOW)
    accounts.add_account(session, "ana@mbie.govt.nz", "another long password", NOW)
    assert len(session.exec(select(Account)).all()) == 1
    assert not accounts.authenticate(session, "ana@mbie.govt.nz", PASSWORD, NOW).ok
    assert accounts.authenticate(session, "ana@mbie.govt.nz", "another long password", NOW).ok


def test_sign_in_checks_the_password_and_records_the_outcome(session: Session) -> None:
    accounts.add_account(session, "ana@mbie.govt.nz", PASSWORD, NOW)
    assert not accounts.authenticate(session, "ana@mbie.govt.nz", PASSWORD + "x", NOW).ok
    assert not accounts.authenticate(session, "nobody@mbie.govt.nz", PASSWORD, NOW).ok
    result = accounts.authenticate(session, " ANA@mbie.govt.nz ", PASSWORD, NOW, client="10.0.0.1")
    assert result.ok and result.account is not None
    assert result.account.last_login_at == NOW
    failed = session.exec(
        select(AuditEvent).where(AuditEvent.action == accounts.SIGNIN_FAILED)
    ).all()
    assert sorted(e.subject or "" for e in failed) == [
        "account:ana@mbie.govt.nz",
        "account:nobody@mbie.govt.nz",
    ]


def test_five_failures_lock_the_account_for_the_window(session: Session) -> None:
    accounts.add_account(session, "ana@mbie.govt.nz", PASSWORD, NOW)
    policy = accounts.LockoutPolicy(attempts=5, window=timedelta(minutes=15))
    for minute in range(5):
        at = NOW + timedelta(minutes=minute)
        assert not accounts.authenticate(
            session, "ana@mbie.govt.nz", "wrong!", at, policy=policy
        ).ok
    locked = accounts.authenticate(
        session, "ana@mbie.govt.nz", PASSWORD, NOW + timedelta(minutes=5), policy=policy
    )
    assert locked.locked and not locked.ok
    # Once the oldest failures leave the window, the right password works again.
    later = accounts.authenticate(
        session, "ana@mbie.govt.nz", PASSWORD, NOW + timedelta(minutes=20), policy=policy
    )
    assert later.ok


def test_an_old_hash_is_upgraded_on_sign_in(session: Session) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    session.add(Account(email="ana@mbie.govt.nz", password_hash=weak, created_at=NOW))
    session.flush()
    result = accounts.authenticate(session, "ana@mbie.govt.nz", PASSWORD, NOW)
    assert result.ok and result.account is not None
    assert result.account.password_hash != weak
    assert not accounts.hasher().check_needs_rehash(result.account.password_hash)
