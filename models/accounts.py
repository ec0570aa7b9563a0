"""Coordinator accounts: argon2id password hashes, sign-in, and failed-attempt bookkeeping.

Failed sign-ins are audit events (``account.signin_failed``, subject ``account:EMAIL``), so
the lockout holds across web processes and restarts, and the attempts are visible in the log.
An attempt while the account is locked is refused without checking the password and recorded
as ``account.signin_locked``: it does not count as a failure, so hammering a locked account
does not keep it locked (nor lock it again sooner). An unknown email costs the same argon2
verification as a known one (no account oracle).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from models import audit
from models.contacts import ContactError, normalise_email
from models.tables import Account, AuditEvent

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
SIGNIN_FAILED = "account.signin_failed"
# An attempt refused because the account was locked (not counted towards the lockout).
SIGNIN_LOCKED = "account.signin_locked"
SIGNED_IN = "account.signed_in"


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class LockoutPolicy:
    """At most ``attempts`` failed sign-ins per account within ``window``."""

    attempts: int = 5
    window: timedelta = timedelta(minutes=15)


@functools.cache
def hasher() -> PasswordHasher:
    # argon2-cffi's defaults follow RFC 9106's second recommended option (argon2id).
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return hasher().hash("not a password of anyone")


def account_email(text: str) -> str:
    # Sign-in is case-insensitive: the whole address is compared in lower case.
    try:
        return normalise_email(text).lower()
    except ContactError as exc:
        raise AccountError(str(exc)) from None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must be at least {MIN_PASSWORD_LENGTH} characters long"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password must be at most {MAX_PASSWORD_LENGTH} characters long"
    if not password.strip():
        return "the password must not be blank"
    return None


def find_account(session: Session, email: str) -> Account | None:
    try:
        address = account_email(email)
    except AccountError:
        return None
    return session.exec(select(Account).where(Account.email == address)).first()


def add_account(
    session: Session, email: str, password: str, now: datetime, *, actor: str = "cli"
) -> Account:
    """A new coordinator account, or a new password for an existing one (audited)."""
    address = account_email(email)
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    digest = hasher().hash(password)
    account = session.exec(select(Account).where(Account.email == address)).first()
    action = "account.password_set"
    if account is None:
        account = Account(email=address, password_hash=digest, created_at=now)
        action = "account.created"
    else:
        account.password_hash = digest
    session.add(account)
    session.flush()
    audit.record(session, actor=actor, action=action, at=now, subject=f"account:{address}")
    return account


def session_key(account: Account) -> str:
    """What a signed-in session keeps of its account's password: a digest of the stored
    hash, so setting a new password (``coordinator add`` again) ends every session signed in
    with the old one. The session cookie is signed, not encrypted: it holds no hash itself."""
    return hashlib.sha256(f"session:{account.password_hash}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SignIn:
    account: Account | None
    locked: bool = False

    @property
    def ok(self) -> bool:
        return self.account is not None


def failed_attempts(
    session: Session, email: str, now: datetime, policy: LockoutPolicy = LockoutPolicy()
) -> int:
    return int(
        session.exec(
            select(sa.func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == SIGNIN_FAILED,
                AuditEvent.subject == f"account:{email}",
                col(AuditEvent.at) > now - policy.window,
            )
        ).one()
    )


def authenticate(
    session: Session,
    email: str,
    password: str,
    now: datetime,
    *,
    policy: LockoutPolicy = LockoutPolicy(),
    client: str | None = None,
) -> SignIn:
    """Check a sign-in (in the caller's transaction, which must commit either way: a failure
    is recorded). A locked account is refused without checking the password, the same way
    whatever was typed, and the refusal is not a failure: the lockout ends once the failures
    that caused it are older than ``policy.window``, however often someone tries meanwhile."""
    try:
        address = account_email(email)
    except AccountError:
        address = email.strip().lower()[:320]
    if failed_attempts(session, address, now, policy) >= policy.attempts:
        _record_failure(session, address, now, client, locked=True)
        return SignIn(None, locked=True)
    account = session.exec(select(Account).where(Account.email == address)).first()
    digest = account.password_hash if account else _dummy_hash()
    try:
        hasher().verify(digest, password[:MAX_PASSWORD_LENGTH])
        verified = account is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        verified = False
    if not verified or account is None:
        _record_failure(session, address, now, client, locked=False)
        return SignIn(None)
    if hasher().check_needs_rehash(account.password_hash):
        account.password_hash = hasher().hash(password)
    account.last_login_at = now
    session.add(account)
    audit.record(session, actor=address, action=SIGNED_IN, at=now, subject=f"account:{address}")
    session.flush()
    return SignIn(account)


def _record_failure(
    session: Session, address: str, now: datetime, client: str | None, *, locked: bool
) -> None:
    audit.record(
        session,
        actor=address,
        action=SIGNIN_LOCKED if locked else SIGNIN_FAILED,
        at=now,
        subject=f"account:{address}",
        detail={"locked": locked, **({"client": client} if client else {})},
    )
    session.flush()
