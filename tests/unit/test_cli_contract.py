"""docs/cli.md is the CLI contract, and this keeps it true: every command and option
of the click tree (the group, its lazily loaded nouns, `ByName`'s commands) is named
there, and every command docs/cli.md names exists, with the options it gives it.

What counts as naming: a line of a fenced block that starts with `storctl`
(alternatives after ` | ` go back up the tree: `pool list | show ID | delete ID`,
continuation lines start with `[`, `(` or `-`, a description after two spaces is
prose), and the `storctl ...` or `-x`/`--x` code spans of a table row's first cell
(`-o` there is the group's). Prose elsewhere may say anything, even a mistyped noun
on purpose (`storctl volumes list`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from cli.main import NOUNS, cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
WORD = re.compile(r"^[a-z][a-z0-9-]*$")
OPTION = re.compile(r"^(-{1,2}[A-Za-z][\w-]*)")
Path_ = tuple[str, ...]


def child(command: click.Command, name: str) -> click.Command | None:
    """A subcommand as `storctl` resolves it (nouns load late; `ByName` holds
    several top-level commands)."""
    ctx = click.Context(cli)
    if command is cli:
        found = cli.get_command(ctx, name)
        by_name = getattr(found, "commands", None)
        if found is not None and not isinstance(found, click.Group) and by_name:
            return by_name.get(name)
        return found
    if isinstance(command, click.Group):
        return command.commands.get(name)
    return None


def tree(
    path: Path_ = (), command: click.Command = cli
) -> Iterator[tuple[Path_, click.Command]]:
    yield path, command
    names = sorted(NOUNS) + sorted(cli.commands) if command is cli else []
    if isinstance(command, click.Group) and command is not cli:
        names = sorted(command.commands)
    for name in names:
        sub = child(command, name)
        assert sub is not None, f"{' '.join((*path, name))} does not load"
        yield from tree((*path, name), sub)


#: the global `-o`/`-c` every command also takes after its verb
#: (`cli.group.late_globals`): documented once, as global options
LATE_GLOBALS = frozenset({"late_output", "late_columns"})


def options(command: click.Command, *, late: bool = False) -> list[click.Option]:
    """The options a command must document; `late`: with the global ones every
    command also takes (a synopsis may give them after the verb)."""
    return [
        p
        for p in command.params
        if isinstance(p, click.Option)
        and not p.hidden
        and p.name != "help"
        and (late or p.name not in LATE_GLOBALS)
    ]


def snippets(text: str) -> Iterator[str]:
    """Each `storctl ...` synopsis of docs/cli.md, continuation lines joined."""
    fenced = False
    current: str | None = None
    for raw in text.splitlines():
        if raw.startswith("```"):
            fenced = not fenced
            if current:
                yield current
            current = None
            continue
        if fenced:
            line = re.split(r"\s{2,}", raw.strip())[0]
            if line.startswith("storctl "):
                if current:
                    yield current
                current = line
            elif current and line[:1] in ("[", "(", "-"):
                current += " " + line
            continue
        if raw.startswith("|") and not raw.startswith("| ---"):
            cells = re.split(r"(?<!\\)\|", raw)
            for span in re.findall(r"`([^`]+)`", cells[1] if len(cells) > 1 else ""):
                span = span.replace("\\|", "|")
                if span.startswith("storctl "):
                    yield span
                elif span.startswith("-"):
                    yield "storctl " + span


def read_contract() -> tuple[dict[Path_, set[str]], list[str]]:
    """What docs/cli.md names: each command's path with the options it gives
    it, and every name it gives that the tree does not have."""
    named: dict[Path_, set[str]] = {(): set()}
    wrong: list[str] = []
    for snippet in snippets(DOC.read_text()):
        stack: list[tuple[Path_, click.Command]] = [((), cli)]
        alternative = value_next = False
        for token in snippet.split()[1:]:
            if token == "|":
                alternative = True
                continue
            word = token.strip("[](),")
            path, command = stack[-1]
            option = OPTION.match(word)
            if option:
                alternative = False
                given = [
                    p for p in options(command, late=True) if option.group(1) in p.opts
                ]
                value_next = bool(given) and not given[0].is_flag and "=" not in word
                if not given and option.group(1) not in ("-h", "--help"):
                    wrong.append(f"{snippet!r}: {' '.join(path)} has no {word}")
                named.setdefault(path, set()).add(option.group(1))
            elif value_next:
                value_next = False  # the option's value: `-o json`, `--db URL`
            elif alternative and WORD.match(word):
                alternative = False
                for depth in range(len(stack) - 1, 0, -1):
                    found = child(stack[depth][1], word)
                    if found is not None:
                        del stack[depth + 1 :]
                        stack.append((stack[depth][0] + (word,), found))
                        named.setdefault(stack[-1][0], set())
                        break
                else:
                    wrong.append(f"{snippet!r}: no command {word!r} under it")
            elif isinstance(command, click.Group) and WORD.match(word):
                alternative = False
                found = child(command, word)
                if found is None:
                    wrong.append(f"{snippet!r}: no command {' '.join((*path, word))}")
                    break
                stack.append(((*path, word), found))
                named.setdefault((*path, word), set())
            else:
                alternative = False  # an argument: `ID`, `KIND`, `png`
    return named, wrong


def test_the_contract_parser_reads_a_synopsis_the_way_an_operator_does():
    """The parser itself: alternatives, continuation lines, table cells."""
    text = (
        "```\n"
        "storctl pool list [--zone Z] | show ID | maintenance enable ID | delete ID\n"
        "storctl vm deploy NAME --template T\n"
        "                 [--host H]   the host (prose: storctl nonsense here)\n"
        "```\n"
        "| `--db URL` | x |\n| `storctl fsm show pool\\|vm` | y |\n"
    )
    assert list(snippets(text)) == [
        "storctl pool list [--zone Z] | show ID | maintenance enable ID | delete ID",
        "storctl vm deploy NAME --template T [--host H]",
        "storctl --db URL",
        "storctl fsm show pool|vm",
    ]


def test_every_command_and_option_is_in_docs_cli_md():
    named, _ = read_contract()
    missing = []
    for path, command in tree():
        if path and not isinstance(command, click.Group) and path not in named:
            missing.append(f"storctl {' '.join(path)}")
        for option in options(command):
            given = set(option.opts + option.secondary_opts)
            if not given & named.get(path, set()):
                missing.append(f"storctl {' '.join(path)} {option.opts[-1]}".strip())
    assert len(named) > 50, "docs/cli.md read as almost empty: the parser broke"
    assert missing == [], "in the CLI but not in docs/cli.md"


def test_docs_cli_md_names_only_commands_and_options_that_exist():
    _, wrong = read_contract()
    assert wrong == []


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("storctl volume frobnicate VOL", "no command volume frobnicate"),
        ("storctl volume list | frobnicate", "no command 'frobnicate'"),
        ("storctl volume list --frobnicate", "volume list has no --frobnicate"),
    ],
)
def test_a_command_the_tree_lacks_is_caught(monkeypatch, tmp_path, line, says):
    doc = tmp_path / "cli.md"
    doc.write_text(f"```\n{line}\n```\n")
    monkeypatch.setitem(globals(), "DOC", doc)
    _, wrong = read_contract()
    assert len(wrong) == 1
    assert says in wrong[0]
