"""The template URL policy: what an operator's URL may name, refused with exit 2
and nothing written before anything connects; and names resolved at the edge."""

from __future__ import annotations

import socket

import pytest

from executors.providers.url_check import check_resolved
from ledger.errors import InvalidInput
from ledger.url_policy import check_template_url
from tests.integration.conftest import Storctl, simulator_zone

ROOTS = ["/srv/img"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only under template.url.allowed.roots"),
        ("file:///srv/img/../../etc/passwd", "absolute, plain path"),
        ("file:///srv/imgs/x.qcow2", "only under template.url.allowed.roots"),
        ("file://otherhost/srv/img/x.qcow2", "names a local path"),
        ("http://127.0.0.1:5432/", "127.0.0.1 is an internal address"),
        ("http://localhost/x", "localhost is an internal address"),
        ("http://[::1]/x", "::1 is an internal address"),
        ("http://[::ffff:10.0.0.1]/x", "is an internal address"),
        ("http://169.254.169.254/latest/", "is an internal address"),
        ("https://192.168.1.10/x", "is an internal address"),
        ("ftp://example.org/x", "expected http://, https:// or file://"),
        ("http:///x", "names no host"),
    ],
)
def test_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason.replace("?", r"\?")):
        check_template_url(url, ROOTS, [])


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/img/x.qcow2",
        "file:///srv/img/sub/x.qcow2",
        "https://images.example.org/x.qcow2",
        "http://198.51.99.7:8080/x.qcow2",
    ],
)
def test_allowed(url: str) -> None:
    check_template_url(url, ROOTS, [])


def test_a_user_and_password_are_refused_without_being_echoed() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_template_url("https://admin:hunter2@images.example.org/x", ROOTS, [])
    assert "hunter2" not in str(caught.value)
    assert "admin" not in str(caught.value)
    assert "no user or password" in str(caught.value)


@pytest.mark.parametrize("site", ["10.1.2.3", "10.1.0.0/16"])
def test_an_internal_address_listed_as_a_site_is_accepted(site: str) -> None:
    url = "http://10.1.2.3/x.qcow2"
    with pytest.raises(InvalidInput, match=r"secstorage\.allowed\.internal\.sites"):
        check_template_url(url, ROOTS, ["10.9.0.0/16"])
    check_template_url(url, ROOTS, [site])


def test_a_name_resolving_inside_the_cloud_is_refused_at_the_edge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host *name* hides its address from the pure policy; the edge resolves it."""

    def resolve(host, port, *args, **kw):
        address = {"db.example.org": "10.0.0.5", "images.example.org": "93.184.215.14"}
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(InvalidInput, match=r"to the internal address 10\.0\.0\.5"):
        check_resolved("http://db.example.org/x.qcow2", [])
    check_resolved("http://db.example.org/x.qcow2", ["db.example.org"])
    check_resolved("http://db.example.org/x.qcow2", ["10.0.0.0/8"])
    check_resolved("https://images.example.org/x.qcow2", [])


# ------------------------------------------------------------------- the CLI


@pytest.fixture
def zone(db_url: str) -> Storctl:
    cli = Storctl(db_url)
    simulator_zone(cli)
    return cli


def _events(cli: Storctl) -> int:
    return len(cli.ok("audit"))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://127.0.0.1:5432/x.qcow2",
        "http://localhost:6789/x.qcow2",
        "https://admin:hunter2@images.example.org/x.qcow2",
    ],
)
def test_the_cli_refuses_with_exit_2_and_writes_nothing(zone: Storctl, url: str):
    before = _events(zone)
    result = zone.run("template", "register", "nt", "--zone", "z1", "--url", url,
                      "--format", "qcow2")  # fmt: skip
    assert result.code == 2, result
    assert result.err.startswith("storctl: invalid url")
    assert len(result.err.strip().splitlines()) == 1
    assert "hunter2" not in result.err + result.out
    assert _events(zone) == before
    assert zone.run("template", "show", "nt").code != 0


def test_an_operator_allows_a_directory_and_an_internal_site(zone: Storctl):
    zone.ok("config", "set", "template.url.allowed.roots", "/srv/img, /srv/more")
    zone.ok("config", "set", "secstorage.allowed.internal.sites", "10.1.0.0/16")
    zone.ok("template", "register", "from-dir", "--zone", "z1",
            "--url", "file:///srv/more/x.qcow2", "--format", "qcow2")  # fmt: skip
    zone.ok("template", "register", "from-mirror", "--zone", "z1",
            "--url", "http://10.1.2.3/x.qcow2", "--format", "qcow2")  # fmt: skip
    refused = zone.run("template", "register", "etc", "--zone", "z1",
                       "--url", "file:///etc/passwd", "--format", "qcow2")  # fmt: skip
    assert refused.code == 2
    assert "/srv/img, /srv/more" in refused.err
