"""What the object store drivers need of a backend: `ObjectStore`, one bucket or
container under one prefix, reached with one set of credentials.

The S3 driver (`s3.bucket.Bucket`, boto3) and the Swift driver
(`swift.container.Container`, auth v1 over `urllib`) both implement it, so the
operations (`s3.transfers`) are written once. Paths are the paths commands carry
(`template/tmpl/<id>/<id>.qcow2`), relative to the store's prefix; the store turns
each into its key (`location.object_key`), so nothing outside the prefix is ever
named. Every method raises `AgentFailure` with the backend's own words, passed
through `Secrets.scrub` first: an error line never carries a key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from executors.providers.driver import AgentFailure
from ledger.commands import ImageStoreTO
from ledger.errors import InvalidInput

#: Called with the bytes moved so far; raises to stop the transfer (a deadline).
Progress = Callable[[int], None]

#: Metadata every object this driver writes carries, so a repeat of a command that
#: finds the object answers what the first run measured (qemu-img is not run on
#: an object store).
VIRTUAL_SIZE = "virtual-size"
SHA256 = "sha256"


@dataclass(frozen=True)
class ObjectHead:
    """What a HEAD of an object says: its size and the metadata it was written with."""

    size: int
    metadata: Mapping[str, str]


class ObjectStore(Protocol):
    """One bucket or container under one prefix (see the module's docstring)."""

    def head(self, path: str) -> ObjectHead | None:
        """The object at `path`, or None when there is none."""
        ...

    def upload(
        self, source: Path, path: str, metadata: Mapping[str, str], progress: Progress
    ) -> None:
        """`source` as the object `path`, which appears only once complete (a
        multipart or segmented upload is aborted and removed when it fails)."""
        ...

    def download(self, path: str, dest: Path, progress: Progress) -> None:
        """The object `path` into the new file `dest`."""
        ...

    def delete(self, path: str) -> None:
        """Remove the object `path` (and its segments); already gone is fine."""
        ...


#: Opens the store a command names (its location and credentials resolved).
Opener = Callable[[ImageStoreTO], ObjectStore]


@dataclass(frozen=True)
class Secrets:
    """The secret values of one set of credentials, to scrub from error lines."""

    values: tuple[str, ...]

    def scrub(self, text: str) -> str:
        for value in self.values:
            if value:
                text = text.replace(value, "***")
        return text

    def failure(self, what: str, why: object) -> AgentFailure:
        """`AgentFailure` of "`what`: `why`" on one line, with no secret in it."""
        line = " ".join(f"{what}: {why}".split())
        return AgentFailure(self.scrub(line))


def required(credentials: Mapping[str, object], keys: tuple[str, ...]) -> list[str]:
    """The values of `keys` in resolved credentials, or a refusal naming the
    missing keys (never a value)."""
    missing = [k for k in keys if not isinstance(credentials.get(k), str)]
    if missing:
        raise InvalidInput(
            "credentials", "", f"missing {', '.join(missing)} in the credentials"
        )
    return [str(credentials[k]) for k in keys]
