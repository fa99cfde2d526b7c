"""Shell completion and "did you mean", as a shell and an operator meet them: a real
`storctl` process, click's completion protocol (`_STORCTL_COMPLETE=bash_complete`
with `COMP_WORDS`/`COMP_CWORD`), exit codes and stderr exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import NOUNS, cli


def storctl(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`storctl ARGS` in a fresh process (as `python -m cli`, the venv's storctl)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("_STORCTL")}
    base.pop("STORCTL_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        check=False,
    )


def complete(words: str, shell: str = "bash", db: str | None = None) -> list[str]:
    """What the shell is offered for the last word of `words` (bash's protocol:
    one `type,value` line each)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {
        "_STORCTL_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    if db is not None:
        env["STORCTL_DB"] = db
    done = storctl(env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


def run(db_url: str, *args: str) -> object:
    result = CliRunner().invoke(cli, ["--db", db_url, "-o", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture
def filled(db_url, tmp_path):
    """A ledger with a host, two pools and three volumes (two named `data-*`)."""
    run(db_url, "host", "add", "kvm-01", "--zone", "z1", "--cluster", "c1")
    for pool in ("gold", "silver"):
        (tmp_path / pool).mkdir()
        run(db_url, "pool", "add", pool, "--zone", "z1", "--cluster", "c1",
            "--path", str(tmp_path / pool), "--capacity", "10G")  # fmt: skip
    for volume in ("data-1", "data-2", "logs"):
        run(db_url, "volume", "create", volume, "--zone", "z1", "--size", "1G")
    return db_url


def test_volume_names_are_completed_from_the_ledger(filled):
    assert complete("storctl volume show da", db=filled) == ["data-1", "data-2"]
    assert complete("storctl volume show ", db=filled) == ["data-1", "data-2", "logs"]


def test_the_db_given_on_the_command_line_is_the_one_read(filled):
    assert complete(f"storctl --db {filled} volume delete l") == ["logs"]
    migrate = f"storctl --db {filled} volume migrate data-1 --pool "
    assert complete(migrate) == ["gold", "silver"]


def test_pools_hosts_and_jobs_are_completed(filled):
    assert complete("storctl pool show ", db=filled) == ["gold", "silver"]
    assert complete("storctl history host k", db=filled) == ["kvm-01"]
    jobs = run(filled, "job", "list")
    assert isinstance(jobs, list)
    assert jobs, "creating volumes made jobs"
    offered = complete("storctl job show ", db=filled)
    assert sorted(offered) == sorted(str(job["jobid"]) for job in jobs)


def test_a_removed_volume_is_no_longer_offered(filled):
    run(filled, "volume", "delete", "logs")
    assert complete("storctl volume show ", db=filled) == ["data-1", "data-2"]


def test_nouns_verbs_and_options_are_completed(tmp_path):
    db = str(tmp_path / "none.db")
    assert complete("storctl ", db=db) == sorted(NOUNS)
    assert complete("storctl vo", db=db) == ["volume"]
    assert complete("storctl volume de", db=db) == ["delete", "detach"]
    assert complete("storctl volume create x --s", db=db) == ["--size"]
    assert complete("storctl --o", db=db) == ["--output"]


@pytest.mark.parametrize(
    ("shell", "cword"),
    [("zsh", "3"), ("fish", "da")],  # fish's script sends the word, not its index
)
def test_zsh_and_fish_are_offered_the_same_names(filled, shell, cword):
    done = storctl(
        env={
            "_STORCTL_COMPLETE": f"{shell}_complete",
            "COMP_WORDS": "storctl volume show da",
            "COMP_CWORD": cword,
            "STORCTL_DB": filled,
        }
    )
    assert done.returncode == 0, done.stderr
    assert "data-1" in done.stdout
    assert "data-2" in done.stdout
    assert "logs" not in done.stdout


def test_no_ledger_completes_nothing_and_creates_nothing(tmp_path):
    missing = tmp_path / "sub" / "missing.db"
    assert complete("storctl volume show ", db=str(missing)) == []
    assert not missing.parent.exists()
    assert (
        complete("storctl volume show ", db="postgresql://nobody@127.0.0.1:1/x") == []
    )


def test_a_file_that_is_no_ledger_completes_nothing(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 100)
    assert complete("storctl volume show ", db=str(junk)) == []
    assert junk.read_text() == "not a database\n" * 100


def test_the_completion_script_is_printed_not_the_help():
    """`_STORCTL_COMPLETE=bash_source storctl` is how click's own script asks; a
    fast-help path used to answer the empty argv first with the help."""
    done = storctl(env={"_STORCTL_COMPLETE": "bash_source"})
    assert done.returncode == 0
    assert "_storctl_completion()" in done.stdout
    assert "Usage:" not in done.stdout


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _storctl_completion storctl"),
        ("zsh", "#compdef storctl"),
        ("fish", "complete --no-files --command storctl"),
    ],
)
def test_completion_command_prints_each_shells_script(shell, marker):
    done = storctl("completion", shell)
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout
    assert "_STORCTL_COMPLETE" in done.stdout


def test_completion_help_says_how_to_install_it():
    done = storctl("completion", "--help")
    assert done.returncode == 0
    assert "~/.bashrc" in done.stdout
    assert "~/.zshrc" in done.stdout
    assert "~/.config/fish/completions/storctl.fish" in done.stdout


def test_an_unknown_shell_is_refused_with_exit_2():
    done = storctl("completion", "tcsh")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "tcsh" in done.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["volumes", "list"],
            "storctl: No such command 'volumes'. Did you mean 'volume'? "
            "(see: storctl --help)",
        ),
        (
            ["volume", "lst"],
            "storctl: No such command 'lst'. Did you mean 'list'? "
            "(see: storctl volume --help)",
        ),
        (["zzzz"], "storctl: No such command 'zzzz'. (see: storctl --help)"),
    ],
)
def test_a_mistyped_noun_or_verb_gets_did_you_mean_and_exit_2(tmp_path, args, line):
    db = tmp_path / "never.db"
    done = storctl("--db", str(db), *args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line + "\n")
    assert not db.exists()


def test_bare_storctl_is_clicks_usage_error_with_the_whole_help():
    """Answered by click itself now (no hand-copied text): the help, with every
    noun, on stderr and exit 2; `--help` is the same text on stdout, exit 0."""
    bare, asked = storctl(), storctl("--help")
    assert (bare.returncode, bare.stdout) == (2, "")
    assert (asked.returncode, asked.stderr) == (0, "")
    assert bare.stderr == asked.stdout
    assert all(f"  {noun} " in asked.stdout for noun in NOUNS)
