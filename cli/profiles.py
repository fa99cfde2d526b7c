"""This client's settings (`db`, `output`, `actor`, `columns`) and where each came from.

An operator who works on several ledgers (a lab file, a PostgreSQL server as
`operator`, a replay file) names them once in `config.toml` instead of typing
`--db` every time, and `storctl config show` answers "why did this command go
there?". Four sources, the first that has a value wins:

    flag (`--db`, `-o`, `--actor`)  >  environment (`STORCTL_DB`, `STORCTL_OUTPUT`)
    >  the chosen profile of config.toml  >  storctl's default

The profile is `--profile NAME`, else `$STORCTL_PROFILE`, else `default` when the
file has one. The file lives where platformdirs puts a user's configuration
(`$XDG_CONFIG_HOME/storctl/config.toml`, `~/.config/...` on Linux)::

    [profiles.default]
    db = "/srv/lab/ledger.db"
    output = "table"

    [profiles.prod]
    db = "postgresql://operator:secret@db1:5432/storctl"
    actor = "alice"
    columns = { volume = "name,state,size,storage", pool = ["name", "state"] }

A profile named but missing, a file that is not TOML, a key storctl does not know:
refused in one line (exit 2) before the command does anything. A password in a
URL never leaves this module unmasked (`masked`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ledger.errors import Refused

#: the keys a profile may hold
KEYS = ("db", "output", "actor", "columns")
#: the environment variable each setting (and the profile's name) is read from
ENV = {"profile": "STORCTL_PROFILE", "db": "STORCTL_DB", "output": "STORCTL_OUTPUT"}
FLAGS = {
    "profile": "--profile",
    "db": "--db",
    "output": "-o/--output",
    "actor": "--actor",
}


class BadClientConfig(Refused):
    """config.toml, or the profile asked for, cannot be used: what and where."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(where=where, why=why)

    def message(self) -> str:
        return f"{self.facts['where']}: {self.facts['why']}"


@dataclass(frozen=True)
class Setting:
    """One value and its source: `flag --db`, `env STORCTL_DB`, `profile NAME in
    FILE` or `default`."""

    value: Any
    source: str


@dataclass(frozen=True)
class ClientSettings:
    file: Path
    profile: Setting
    db: Setting
    output: Setting
    actor: Setting
    columns: Setting

    @property
    def db_url(self) -> str | None:
        """`--db` as the ledger takes it: None for storctl's default place, so the
        folder is made only there (`AppContext._open`)."""
        return None if self.db.source == "default" else str(self.db.value)

    def columns_for(self, noun: str) -> list[str] | None:
        """The profile's columns for one noun's tables (`volume`, `pool`, ...)."""
        chosen: dict[str, list[str]] = self.columns.value or {}
        return chosen.get(noun)

    def rows(self) -> list[dict[str, Any]]:
        """What `config show` prints: each setting, its value (passwords masked)
        and its source."""
        rows = [{"setting": "file", "value": str(self.file), "source": _file_source()}]
        for name in ("profile", *KEYS):
            setting: Setting = getattr(self, name)
            value = setting.value
            if name == "db":
                value = masked(str(value))
            elif name == "columns" and value is not None:
                value = {noun: ",".join(cols) for noun, cols in value.items()}
            rows.append({"setting": name, "value": value, "source": setting.source})
        return rows


def config_file() -> Path:
    """Where the user's config.toml is (platformdirs: XDG on Linux)."""
    from platformdirs import user_config_path

    return user_config_path("storctl") / "config.toml"


def _file_source() -> str:
    linux = sys.platform == "linux"
    return "platformdirs ($XDG_CONFIG_HOME)" if linux else "platformdirs"


def masked(url: str) -> str:
    """`url` with any password replaced by `***`: in the user part
    (`user:secret@host`, even unencoded) and in a `password=` parameter."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        if colon:
            rest = f"{user}:***@{host}"
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", f"{scheme}{sep}{rest}")


def resolve(ctx: click.Context, **given: Any) -> ClientSettings:
    """The settings this command runs with. `given` holds the group's parameters
    (`profile`, `db`, `output`, `actor`) as click parsed them from a flag or the
    environment; click says which (`get_parameter_source`)."""
    file = config_file()
    name = given.get("profile")
    named = _source(ctx, "profile") if name else None
    profiles = _read(file) if file.exists() else None
    if name and profiles is None:
        raise BadClientConfig(f"profile {name!r}", f"{file} does not exist")
    if not name and profiles is not None and "default" in profiles:
        name = "default"
    values: dict[str, Any] = {}
    if name:
        assert profiles is not None
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise BadClientConfig(str(file), f"no profile {name!r} (profiles: {known})")
        values = profiles[name]
        if "output" in values:
            _output(ctx, f"{file}: profile {name!r}", values["output"])
    in_profile = f"profile {name} in {file}"

    def pick(key: str, default: Any, default_source: str = "default") -> Setting:
        source = _source(ctx, key) if given.get(key) is not None else None
        if source is not None:
            return Setting(given[key], source)
        if key in values:
            return Setting(values[key], in_profile)
        return Setting(default, default_source)

    from ledger.store.database import default_url

    tty = sys.stdout.isatty()
    return ClientSettings(
        file=file,
        profile=Setting(name, named or "default"),
        db=pick("db", default_url()),
        output=pick(
            "output",
            "table" if tty else "json",
            f"default (stdout is {'' if tty else 'not '}a terminal)",
        ),
        actor=pick("actor", None),
        columns=pick("columns", None),
    )


def _source(ctx: click.Context, key: str) -> str | None:
    """`flag --db` or `env STORCTL_DB` for a parameter click filled in."""
    source = ctx.get_parameter_source(key)
    if source is click.core.ParameterSource.COMMANDLINE:
        return f"flag {FLAGS[key]}"
    if source is click.core.ParameterSource.ENVIRONMENT:
        return f"env {ENV[key]}"
    return None


def _read(file: Path) -> dict[str, dict[str, Any]]:
    """Every profile of `file`, each checked key by key."""
    import tomllib

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadClientConfig(
            str(file), f"cannot be read ({exc.__class__.__name__})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise BadClientConfig(str(file), f"not TOML: {exc}") from None
    unknown = sorted(set(data) - {"profiles"})
    if unknown:
        raise BadClientConfig(
            str(file), f"unknown key {unknown[0]!r} (expected [profiles.NAME] tables)"
        )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise BadClientConfig(str(file), "profiles must be [profiles.NAME] tables")
    return {name: _profile(file, name, body) for name, body in profiles.items()}


def _profile(file: Path, name: str, body: object) -> dict[str, Any]:
    where = f"{file}: profile {name!r}"
    if not isinstance(body, dict):
        raise BadClientConfig(where, "must be a table of keys")
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise BadClientConfig(
            where, f"unknown key {unknown[0]!r} (keys: {', '.join(KEYS)})"
        )
    checked: dict[str, Any] = {}
    for key, value in body.items():
        if key == "columns":
            checked[key] = _columns(where, value)
        elif not isinstance(value, str) or not value.strip():
            raise BadClientConfig(where, f"{key} must be a non-empty string")
        else:
            checked[key] = value
    return checked


def _output(ctx: click.Context, where: str, value: str) -> str:
    """An output format the group's `-o` takes (its choices, whatever they are)."""
    option = next((p for p in ctx.command.params if p.name == "output"), None)
    choices: Sequence[str] = getattr(getattr(option, "type", None), "choices", ())
    if choices and value not in choices:
        listed = ", ".join(map(str, choices))
        raise BadClientConfig(where, f"output {value!r} is not one of {listed}")
    return value


def _columns(where: str, value: object) -> dict[str, list[str]]:
    """`columns = { volume = "name,state", pool = ["name", "state"] }`: per noun."""
    from cli.nouns import NOUNS

    if not isinstance(value, Mapping):
        raise BadClientConfig(
            where, 'columns must be a table per noun: { volume = "name,state" }'
        )
    checked: dict[str, list[str]] = {}
    for noun, cols in value.items():
        if noun not in NOUNS:
            raise BadClientConfig(where, f"columns: unknown noun {noun!r}")
        if isinstance(cols, str):
            cols = cols.split(",")
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise BadClientConfig(where, f"columns.{noun} must be names: 'a,b,c'")
        names = [c.strip() for c in cols if c.strip()]
        if not names:
            raise BadClientConfig(where, f"columns.{noun} names no column")
        checked[noun] = names
    return checked
