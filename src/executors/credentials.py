"""Credentials by reference: events name them (`lab-ceph`), executors resolve them.

A Ceph keyring, S3 keys, a Swift key, a CHAP secret never enter an event, a table,
a log line or an error: a pool or store records the *name* of its credentials, and
the executor that needs them reads them here, from the profile file or the
environment, at the moment it runs a command.

- The profile: a TOML table per name, in `$STORCTL_CREDENTIALS` or else
  `$XDG_CONFIG_HOME/storctl/credentials.toml` (`make lab` writes one for the lab).
- The environment: `STORCTL_CRED_<NAME>_<KEY>` (the name upper-cased, `-` and `.` as
  `_`) sets or overrides one key, so a worker can run without a file.

A name that resolves to nothing is refused with the name only; nothing says what a
secret was or would have been.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ledger.errors import InvalidInput

ENV_FILE = "STORCTL_CREDENTIALS"
ENV_PREFIX = "STORCTL_CRED_"


def profile_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the profile file is looked for."""
    env = os.environ if env is None else env
    if env.get(ENV_FILE):
        return Path(env[ENV_FILE]).expanduser()
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "storctl" / "credentials.toml"


def _from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        why = exc.strerror or "unreadable"
        raise InvalidInput("credentials file", str(path), why) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # not the parser's message: it may quote the file's text (a secret)
        raise InvalidInput("credentials file", str(path), "not valid TOML") from None
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _env_key(name: str) -> str:
    return ENV_PREFIX + "".join(c if c.isalnum() else "_" for c in name.upper()) + "_"


def resolve(name: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The keys of credentials `name`: the profile's table, the environment's
    `STORCTL_CRED_<NAME>_<KEY>` over it. Refused (exit 2) when neither has any."""
    env = os.environ if env is None else env
    path = profile_path(env)
    found: dict[str, Any] = dict(_from_file(path).get(name, {}))
    prefix = _env_key(name)
    for key, value in env.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            found[key[len(prefix) :].lower()] = value
    if not found:
        raise InvalidInput(
            "credentials",
            name,
            f"not in {path} nor in the environment ({prefix}<KEY>)",
        )
    return found
