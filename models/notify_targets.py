"""Whether a contact's notify URL would send to a private or local address.

A coordinator may give a contact an extra Apprise URL. The generic webhooks among them
(``json://``, ``form://``, ``xml://`` and their ``s`` forms) post to whatever host the URL
names, from the worker, inside the deployment's own network: a URL naming ``127.0.0.1``, a
private address or the cloud metadata address (``169.254.169.254``) would let whoever can edit
contacts make the worker call services that are not meant to be reached from outside. So,
unless the installation allows it (``REPORTCYCLE_NOTIFY_PRIVATE_HOSTS=true``, for a chat server
on the same network), a notify URL may only reach public addresses.

- When a URL is entered, no name is looked up (that would make saving a contact depend on DNS
  and on the moment): a host given as an address, or ``localhost``, is checked.
- When a message is sent, a webhook's host name is resolved and every address it has is
  checked. Other services' URLs are checked only for a host given as an address: their
  "host" part is often a token, not a host (``slack://TokenA/TokenB/TokenC``).

What this does not stop: a name that resolves to a public address at the check and to a
private one a moment later, when Apprise connects (DNS rebinding). Closing that would mean
connecting to the checked address ourselves, which Apprise does not offer.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
SETTING = "REPORTCYCLE_NOTIFY_PRIVATE_HOSTS"


class UnresolvableHost(LookupError):
    """The webhook's host name has no address (now): the message cannot go yet."""


def _host(url: str) -> tuple[str, str | None]:
    try:
        parts = urlsplit(url.strip())
        return parts.scheme.lower(), parts.hostname
    except ValueError:  # e.g. a bad IPv6 literal: not ours to judge, Apprise refuses it
        return "", None


def _non_public(address: str) -> bool:
    # "%eth0" scopes an IPv6 link-local address; the address itself decides.
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


def _literal(host: str) -> str | None:
    """``host`` when it is ``localhost`` or a non-public address; None for a public address
    or a name (which is not looked up here)."""
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return host
    try:
        return host if _non_public(host) else None
    except ValueError:
        return None


def private_host_in_url(url: str) -> str | None:
    """The host of ``url`` when it is given as ``localhost`` or a non-public address, whatever
    the service; None otherwise. No name is looked up."""
    _scheme, host = _host(url)
    return _literal(host) if host else None


def private_target(url: str) -> str | None:
    """The first non-public address a message to ``url`` would reach, else None: for a
    webhook, its host resolved now (UnresolvableHost when it has no address); for any other
    service, its host only when given as an address or ``localhost``."""
    scheme, host = _host(url)
    if not host:
        return None
    literal = _literal(host)
    if literal is not None or scheme not in WEBHOOK_SCHEMES:
        return literal
    try:
        ipaddress.ip_address(host)
        return None  # a public address, checked above
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"{host} has no address ({exc})") from None
    for info in infos:
        address = str(info[4][0])
        if _non_public(address):
            return f"{host} ({address.split('%', 1)[0]})"
    return None
