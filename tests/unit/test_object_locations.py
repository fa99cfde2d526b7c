"""Object store locations and keys (`executors.providers.s3.location`), offline.

Every part of an `s3://` or `swift://` location is checked before anything
connects to it: the endpoint is http(s) with a host and nothing else, the query
takes only its keys, the prefix and every key built from a command's path stay
plain components under the prefix. Secrets are scrubbed from error lines.
"""

from __future__ import annotations

import pytest

from executors.providers.s3.location import object_key, parse_s3, parse_swift
from executors.providers.s3.objects import Secrets, required
from ledger.errors import InvalidInput

RGW = "http://127.0.0.1:7480"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (f"s3://lab/a/b?endpoint={RGW}", f"s3://lab/a/b?endpoint={RGW}"),
        (f"s3://lab/a/?endpoint={RGW}/", f"s3://lab/a?endpoint={RGW}"),
        ("s3://lab?endpoint=HTTPS://S3.Example.org&region=eu-west-1",
         "s3://lab?endpoint=https://s3.example.org&region=eu-west-1"),
        ("s3://lab?endpoint=http://[::1]:7480", "s3://lab?endpoint=http://[::1]:7480"),
    ],
)  # fmt: skip
def test_an_s3_location_is_recorded_in_its_canonical_form(given, canonical):
    assert parse_s3(given).canonical == canonical
    assert parse_s3(canonical).canonical == canonical


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("s3://lab/templates", r"missing \?endpoint="),
        ("s3://lab?endpoint=ftp://h", "only http:// and https://"),
        ("s3://lab?endpoint=file:///etc", "only http:// and https://"),
        ("s3://lab?endpoint=http://user:pw@h", "credentials do not belong"),
        ("s3://lab?endpoint=http://h/path", "a path is not accepted"),
        ("s3://lab?endpoint=http://h:99999", "port"),
        ("s3://lab?endpoint=http://", "no host"),
        ("s3://lab?endpoint=http://h%0a.x", "control character"),
        ("s3://lab?endpoint=http://h_x", "not a host name"),
        ("s3://lab?endpoint=http://h&acl=public", "unknown query key 'acl'"),
        ("s3://lab?endpoint=http://h&endpoint=http://g", "given twice"),
        ("s3://lab?endpoint=http://h&region=EU!", "not a region"),
        ("s3://lab?endpoint=http://h#frag", "fragment"),
        ("s3://lab/../x?endpoint=http://h", "'..' not allowed"),
        ("s3://lab/a b?endpoint=http://h", "space"),
        ("s3://Lab?endpoint=http://h", "not a valid S3 bucket"),
        ("s3://key:secret@lab?endpoint=http://h", "credentials or a port"),
        ("swift://c?auth=http://h", "auth names no path"),
        ("swift://c/p", r"missing \?auth="),
        ("swift://c?auth=http://h/auth/1.0&user=x", "unknown query key 'user'"),
    ],
)
def test_a_bad_location_is_refused_naming_it(location, says):
    parse = parse_swift if location.startswith("swift") else parse_s3
    with pytest.raises(InvalidInput, match=says) as refused:
        parse(location)
    assert repr(location) in str(refused.value)


def test_a_swift_location_keeps_its_auth_path():
    where = parse_swift("swift://c/p/q?auth=http://H:8080/auth/1.0/")
    assert where.canonical == "swift://c/p/q?auth=http://h:8080/auth/1.0"
    assert where.key("template/x.qcow2") == "p/q/template/x.qcow2"


@pytest.mark.parametrize(
    "path", ["../x", "/etc/passwd", "a//b", "a/./b", "a/-rf", "a/b c", "", "a\nb"]
)
def test_a_key_never_leaves_its_prefix(path):
    with pytest.raises(InvalidInput):
        object_key("pre", path)


def test_a_key_is_the_path_under_the_prefix():
    assert object_key("", "template/tmpl/1/1.qcow2") == "template/tmpl/1/1.qcow2"
    assert object_key("a/b", "snapshots/v/s.qcow2") == "a/b/snapshots/v/s.qcow2"


def test_secrets_are_scrubbed_and_missing_keys_named_without_values():
    secrets = Secrets(("AKIAEXAMPLE", "s3cr3t"))
    failure = secrets.failure("upload", "denied for AKIAEXAMPLE with\ns3cr3t")
    assert str(failure) == "upload: denied for *** with ***"
    with pytest.raises(InvalidInput, match="missing secret_key") as refused:
        required({"access_key": "AKIAEXAMPLE"}, ("access_key", "secret_key"))
    assert "AKIAEXAMPLE" not in str(refused.value)
