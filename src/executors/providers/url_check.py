"""Template URLs checked where names resolve: at the edge before anything is written,
and by the agent when it connects, at every redirect.

`ledger.url_policy` refuses what a URL says by itself (scheme, user info, address
literals, file roots). A host *name* can hide an internal address
(`db.internal`, or a DNS name pointing at 127.0.0.1), and a server can redirect to
one, so the name is resolved here: every address it resolves to must be outside
the cloud's internal ranges, unless an allowed site names it. A name that does not
resolve is left to the download, which then fails with the resolver's words.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any

from ledger.errors import InvalidInput
from ledger.url_policy import SITES_KEY, allowed_site, check_template_url, is_internal


def check_resolved(url: str, sites: Iterable[str]) -> None:
    """Refuse a URL whose host resolves to an internal address not allowed."""
    sites = list(sites)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
        return
    host = parsed.hostname
    if allowed_site(host, sites):
        return
    try:
        infos = socket.getaddrinfo(host, parsed.port or 80, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return  # the download says so, in the resolver's words
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if is_internal(address) and not allowed_site(str(address), sites):
            raise InvalidInput(
                "url",
                url,
                f"{host} resolves to the internal address {address}; "
                f"list it in {SITES_KEY} to allow it",
            )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the same rules allow."""

    def __init__(self, sites: list[str]) -> None:
        self.sites = sites

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise InvalidInput("url", newurl, "a redirect to another scheme")
        check_template_url(newurl, [], self.sites)
        check_resolved(newurl, self.sites)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_checked(url: str, sites: Iterable[str], timeout: float) -> Any:
    """`urlopen` for a template: the host and every redirect checked first."""
    sites = list(sites)
    check_template_url(url, [], sites)
    check_resolved(url, sites)
    opener = urllib.request.build_opener(_CheckedRedirects(sites))
    return opener.open(url, timeout=timeout)


def checked_file(url: str, roots: Iterable[str]) -> Path:
    """A `file://` template's real path (symbolic links followed), inside one of
    `roots`: a link planted under an allowed root cannot reach out of it."""
    roots = list(roots)
    parsed = urllib.parse.urlsplit(url)
    check_template_url(url, roots, [])
    real = Path(os.path.realpath(urllib.parse.unquote(parsed.path)))
    inside = [Path(os.path.realpath(r)) for r in roots]
    if not any(real == r or real.is_relative_to(r) for r in inside):
        raise InvalidInput("url", url, "leads out of the allowed roots")
    return real


def open_file_checked(url: str, roots: Iterable[str]) -> IO[bytes]:
    """A `file://` template opened at its checked real path (`checked_file`)."""
    return open(checked_file(url, roots), "rb")
