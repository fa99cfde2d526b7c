"""Profiles (`cli.profiles`): which source wins for each client setting, what
`config show` says about it, passwords masked, and every broken file or unknown
profile refused in one line with exit 2 and nothing written.

Each test has its own XDG_CONFIG_HOME; conftest gives every other test an empty one."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli.main import cli
from cli.profiles import masked
from ledger.store.database import default_url

FLAG = {"db": "/tmp/flag.db", "output": "csv", "actor": "flag-actor"}
ENV = {"db": "/tmp/env.db", "output": "json"}
PROFILE = {"db": "/tmp/profile.db", "output": "csv", "actor": "profile-actor"}
ENV_NAME = {"db": "STORCTL_DB", "output": "STORCTL_OUTPUT"}
OPTION = {"db": "--db", "output": "-o", "actor": "--actor"}


def write_config(home: Path, text: str) -> Path:
    file = home / "storctl" / "config.toml"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    return file


def toml_profile(name: str, values: dict[str, str]) -> str:
    body = "".join(f'{k} = "{v}"\n' for k, v in values.items())
    return f"[profiles.{name}]\n{body}"


def invoke(home: Path, args: list[str], env: dict[str, str] | None = None):
    base = {"XDG_CONFIG_HOME": str(home), "STORCTL_DB": None}
    return CliRunner().invoke(cli, args, env={**base, **(env or {})})


def settings_of(stdout: str) -> dict[str, dict[str, str]]:
    """`config show` in JSON or CSV, by setting."""
    text = stdout.strip()
    rows = (
        json.loads(text) if text.startswith("[") else csv.DictReader(io.StringIO(text))
    )
    return {row["setting"]: row for row in rows}


# --- precedence: flag > environment > profile > default -------------------------

SOURCES = {
    "db": ("flag", "env", "profile"),
    "output": ("flag", "env", "profile"),
    "actor": ("flag", "profile"),
}


@given(
    chosen=st.fixed_dictionaries(
        {key: st.sets(st.sampled_from(srcs)) for key, srcs in SOURCES.items()}
    ),
    selector=st.sampled_from(["flag", "env", "default"]),
)
def test_the_first_source_that_has_a_value_wins(chosen, selector):
    """Any mix of sources for db, output and actor, with the profile chosen by
    flag, by STORCTL_PROFILE or as `default`: each setting has the value of the
    first source in flag > env > profile > default, and says so."""
    name = "default" if selector == "default" else "lab"
    args: list[str] = []
    env: dict[str, str] = {}
    profile: dict[str, str] = {}
    for key, sources in chosen.items():
        if "flag" in sources:
            args += [OPTION[key], FLAG[key]]
        if "env" in sources:
            env[ENV_NAME[key]] = ENV[key]
        if "profile" in sources:
            profile[key] = PROFILE[key]
    if selector == "flag":
        args += ["--profile", name]
    elif selector == "env":
        env["STORCTL_PROFILE"] = name
    with tempfile.TemporaryDirectory() as home:
        file = write_config(Path(home), toml_profile(name, profile))
        result = invoke(Path(home), [*args, "config", "show"], env)
        assert result.exit_code == 0, result.output
        shown = settings_of(result.stdout)

    defaults = {"db": default_url(), "output": "json", "actor": None}
    for key, sources in chosen.items():
        first = next((s for s in ("flag", "env", "profile") if s in sources), None)
        value = {"flag": FLAG, "env": ENV, "profile": PROFILE}.get(first, defaults)[key]
        source = shown[key]["source"]
        assert (shown[key]["value"] or None) == value, (key, sources)
        if first == "flag":
            assert source.startswith("flag "), source
        elif first == "env":
            assert source == f"env {ENV_NAME[key]}"
        elif first == "profile":
            assert source == f"profile {name} in {file}"
        else:
            assert source.startswith("default"), source
    assert shown["profile"]["value"] == name
    assert (
        shown["profile"]["source"]
        == {
            "flag": "flag --profile",
            "env": "env STORCTL_PROFILE",
            "default": "default",
        }[selector]
    )


def test_without_a_file_every_setting_is_the_default(tmp_path):
    result = invoke(tmp_path, ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = settings_of(result.stdout)
    assert shown["file"]["value"] == str(tmp_path / "storctl" / "config.toml")
    assert shown["profile"] == {
        "setting": "profile",
        "value": None,
        "source": "default",
    }
    assert shown["db"]["value"] == default_url()
    assert shown["output"] == {
        "setting": "output",
        "value": "json",
        "source": "default (stdout is not a terminal)",
    }


def test_a_flag_beats_the_profile_and_the_profile_beats_the_default(tmp_path):
    write_config(tmp_path, toml_profile("default", {"output": "csv", "actor": "bob"}))
    result = invoke(tmp_path, ["-o", "json", "config", "show"])
    shown = settings_of(result.stdout)
    assert shown["output"]["source"] == "flag -o/--output"
    assert shown["actor"]["value"] == "bob"


def test_columns_are_kept_per_noun(tmp_path):
    write_config(
        tmp_path,
        '[profiles.default]\ncolumns = { volume = "name, state", pool = ["name"] }\n',
    )
    result = invoke(tmp_path, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert settings_of(result.stdout)["columns"]["value"] == {
        "volume": "name,state",
        "pool": "name",
    }


def test_the_profiles_db_is_the_ledger_the_command_writes(tmp_path):
    """Not only shown: a write with no --db goes to the profile's ledger (a real
    process, as an operator runs it)."""
    ledger = tmp_path / "from-profile.db"
    write_config(tmp_path, toml_profile("lab", {"db": str(ledger)}))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "STORCTL_PROFILE": "lab"}
    env.pop("STORCTL_DB", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "host",
            "add",
            "kvm-1",
            "--zone",
            "z1",
            "--cluster",
            "c1",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "kvm-1"
    assert ledger.exists()


# --- masking ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://op:s3cret@db1:5432/x", "postgresql://op:***@db1:5432/x"),
        ("postgresql://op:s3/c@et@db1/x", "postgresql://op:***@db1/x"),
        (
            "postgresql://db1/x?password=s3cret&a=b",
            "postgresql://db1/x?password=***&a=b",
        ),
        ("postgresql://op@db1/x", "postgresql://op@db1/x"),
        ("/srv/lab/ledger.db", "/srv/lab/ledger.db"),
        ("sqlite:////srv/a.db", "sqlite:////srv/a.db"),
    ],
)
def test_masked_hides_every_password(url, shown):
    assert masked(url) == shown


@pytest.mark.parametrize("output", ["json", "csv", "table"])
def test_config_show_never_prints_the_password(tmp_path, output):
    secret = "pa55-w0rd"
    db = f"postgresql://operator:{secret}@db1:5432/storctl?password={secret}"
    write_config(tmp_path, toml_profile("prod", {"db": db}))
    result = invoke(tmp_path, ["-o", output, "--profile", "prod", "config", "show"])
    assert result.exit_code == 0, result.output
    assert "operator:***@db1" in result.stdout
    assert secret not in result.stdout + result.stderr


# --- refusals: one line, exit 2, nothing written ----------------------------------

BAD_FILES = {
    "not TOML": ("[profiles.default\n", "not TOML"),
    "unknown key": ('[profiles.default]\ndbb = "x"\n', "unknown key 'dbb'"),
    "unknown table": ('[default]\ndb = "x"\n', "unknown key 'default'"),
    "not a string": ("[profiles.default]\nactor = 3\n", "actor must be"),
    "bad output": ('[profiles.default]\noutput = "xml"\n', "output 'xml' is not"),
    "bad noun": ('[profiles.default]\ncolumns = { volumes = "a" }\n', "'volumes'"),
    "bad columns": ('[profiles.default]\ncolumns = "name"\n', "columns must be"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_broken_file_is_refused_before_anything_is_written(tmp_path, case):
    text, says = BAD_FILES[case]
    write_config(tmp_path, text)
    ledger = tmp_path / "l.db"
    args = ["--db", str(ledger), "host", "add", "h", "--zone", "z", "--cluster", "c"]
    result = invoke(tmp_path, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert says in result.stderr
    assert result.stderr.startswith("storctl: ")
    assert not ledger.exists()


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--profile", "nope"], {}, "no profile 'nope' (profiles: default, lab)"),
        ([], {"STORCTL_PROFILE": "nope"}, "no profile 'nope'"),
        ([], {"STORCTL_OUTPUT": "xml"}, "'xml' is not one of"),
    ],
)
def test_an_unknown_profile_or_output_is_refused(tmp_path, args, env, says):
    write_config(tmp_path, toml_profile("default", {}) + toml_profile("lab", {}))
    ledger = tmp_path / "l.db"
    cmd = [*args, "--db", str(ledger), "host", "add", "h", "--zone", "z",
           "--cluster", "c"]  # fmt: skip
    result = invoke(tmp_path, cmd, env)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert says in result.stderr
    assert not ledger.exists()


def test_a_profile_named_without_a_file_is_refused_in_a_real_process(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--profile", "prod", "volume", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    file = tmp_path / "storctl" / "config.toml"
    assert done.stderr == f"storctl: profile 'prod': {file} does not exist\n"


def test_the_chosen_output_and_actor_are_the_ones_the_command_uses(tmp_path):
    """STORCTL_OUTPUT over the profile's output, and the profile's actor kept
    beside who the store says appended (`onbehalfof`)."""
    ledger = str(tmp_path / "l.db")
    write_config(tmp_path, toml_profile("default", {"output": "csv", "actor": "alice"}))
    added = invoke(tmp_path, ["--db", ledger, "host", "add", "h1", "--zone", "z",
                              "--cluster", "c"])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout.splitlines()[0].startswith("id,name,")  # the profile's csv
    listed = invoke(tmp_path, ["--db", ledger, "audit"], {"STORCTL_OUTPUT": "json"})
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert rows
    assert all("alice" in json.dumps(row["details"]) for row in rows)
