"""What the demo's people use: their mailbox (the ``.eml`` outbox) and a browser.

The browser is FastAPI's TestClient on the real app, in this process: it fetches pages,
reads their HTML forms as a browser would (hidden fields, CSRF tokens, checked radios,
textareas), and posts them back with what the person typed. Nothing here knows the form's
internals beyond what the page shows.
"""

from __future__ import annotations

import email
import email.policy
import re
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from fastapi import FastAPI

with warnings.catch_warnings():
    # Starlette asks for httpx2 but works with httpx, which is what this project installs.
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

LINK = re.compile(r"https?://[^\s<>\"']+/r/[A-Za-z0-9_\-]+")
VOID_TAGS = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr")
)


class DemoError(RuntimeError):
    """The demo could not do what its script says; the message says what and where."""


# --- the mailbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    path: Path
    kind: str
    to: str
    subject: str
    text: str

    @property
    def links(self) -> list[str]:
        return LINK.findall(self.text)


def read_mail(path: Path) -> Mail:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return Mail(
        path=path,
        kind=str(message["X-Reportcycle-Kind"] or ""),
        to=str(message["To"] or ""),
        subject=str(message["Subject"] or ""),
        text=str(text),
    )


def outbox_files(directory: Path) -> list[Path]:
    """The outbox's messages, oldest first (file names start with the send time)."""
    return sorted(directory.glob("*.eml")) if directory.exists() else []


def read_outbox(directory: Path) -> list[Mail]:
    return [read_mail(path) for path in outbox_files(directory)]


def link_for(directory: Path, address: str, kind: str | None = None) -> str:
    """The link in the latest mail to ``address`` that carries one (of ``kind``, if given)."""
    headers = BytesHeaderParser(policy=compat32)
    for path in reversed(outbox_files(directory)):
        # File names end with the kind; the headers alone say to whom (cheap to read).
        if kind is not None and not path.name.endswith(f"-{kind}.eml"):
            continue
        with path.open("rb") as handle:
            to = str(headers.parse(handle)["To"] or "")
        if address.lower() not in to.lower():
            continue
        mail = read_mail(path)
        if mail.links:
            return mail.links[0]
    what = f"a {kind.replace('_', ' ')}" if kind else "a message"
    raise DemoError(f"no {what} with a link reached {address} in {directory}")


# --- pages and their forms --------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    # Ids of the elements around the form (the innermost last), to tell similar forms apart.
    within: tuple[str, ...]
    fields: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)

    def values(self) -> dict[str, str]:
        return dict(self.fields)


@dataclass
class Page:
    url: str
    status: int
    html: str
    forms: list[Form]
    # A fieldset's legend and a heading's text, by the element's id.
    legends: dict[str, str]
    headings: dict[str, str]

    def form(self, action: str | None = None, *, within: str | None = None) -> Form:
        for form in self.forms:
            if action is not None and not form.action.endswith(action):
                continue
            if within is not None and within not in form.within:
                continue
            return form
        raise DemoError(f"no form {action or ''} {within or ''} on {self.url}".strip())

    def problem(self) -> str:
        """The page's error summary or message, for an error message of the demo."""
        text = re.sub(r"<[^>]+>", " ", self.html)
        text = " ".join(text.split())
        for marker in ("There is a problem", "There are", "problem", "could not"):
            at = text.find(marker)
            if at >= 0:
                return text[at : at + 400]
        return text[:400]


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.legends: dict[str, str] = {}
        self.headings: dict[str, str] = {}
        self._stack: list[tuple[str, str | None]] = []
        self._form: Form | None = None
        self._textarea: tuple[str, list[str]] | None = None
        self._pending_fieldset: str | None = None
        self._capture: tuple[dict[str, str], str, list[str], str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        element_id = a.get("id") or None
        if tag == "form":
            within = tuple(i for _t, i in self._stack if i)
            self._form = Form(a.get("action", ""), a.get("method", "get").lower(), within)
            self.forms.append(self._form)
        elif tag == "fieldset" and element_id:
            self._pending_fieldset = element_id
        elif tag == "legend" and self._pending_fieldset and self._capture is None:
            self._capture = (self.legends, self._pending_fieldset, [], "legend")
            self._pending_fieldset = None
        elif tag in ("h1", "h2", "h3") and element_id and self._capture is None:
            self._capture = (self.headings, element_id, [], tag)
        elif self._form is not None and "name" in a and "disabled" not in a:
            self._field(tag, a)
        if tag not in VOID_TAGS:
            self._stack.append((tag, element_id))

    def _field(self, tag: str, a: dict[str, str]) -> None:
        assert self._form is not None
        name = a["name"]
        if tag == "textarea":
            self._textarea = (name, [])
        elif tag == "button":
            self._form.buttons.append((name, a.get("value", "")))
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self._form.fields.append((name, a.get("value", "on")))
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self._form.fields.append((name, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea is not None and self._form is not None:
            name, parts = self._textarea
            # A browser drops the one newline right after <textarea>.
            self._form.fields.append((name, "".join(parts).removeprefix("\n")))
            self._textarea = None
        if self._capture is not None and tag == self._capture[3]:
            target, key, parts, _tag = self._capture
            target[key] = " ".join("".join(parts).split())
            self._capture = None
        if tag == "form":
            self._form = None
        if tag in VOID_TAGS:
            return
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                break

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1].append(data)
        if self._capture is not None:
            self._capture[2].append(data)


def parse_page(url: str, status: int, html: str) -> Page:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return Page(url, status, html, parser.forms, parser.legends, parser.headings)


class Browser:
    """One person's browser (its own cookies) on the app, in this process."""

    def __init__(self, app: FastAPI, base_url: str) -> None:
        self.base_url = base_url
        self.client = TestClient(app, base_url=base_url, follow_redirects=True)

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, *, expect: int = 200) -> Page:
        response = self.client.get(self._local(url))
        return self._page(response.url, response.status_code, response.text, expect, "GET", url)

    def submit(
        self,
        page: Page,
        form: Form,
        changes: dict[str, str] | None = None,
        *,
        button: tuple[str, str] | None = None,
        expect: int = 200,
    ) -> Page:
        """Post ``form`` as shown, with ``changes`` typed over it and ``button`` pressed."""
        values = form.values()
        values.update(changes or {})
        if button is not None:
            values[button[0]] = button[1]
        target = urljoin(page.url, form.action or page.url)
        response = self.client.post(self._local(target), data=values)
        return self._page(response.url, response.status_code, response.text, expect, "POST", target)

    def _local(self, url: str) -> str:
        # The links name the web app's public address; the app answers here, in-process.
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _page(
        self, url: object, status: int, html: str, expect: int, method: str, asked: str
    ) -> Page:
        page = parse_page(str(url), status, html)
        if status != expect:
            path = urlsplit(asked).path
            shown = re.sub(r"/r/[^/?#]+", "/r/…", path)  # never print a token
            raise DemoError(f"{method} {shown} answered {status}: {page.problem()}")
        return page
