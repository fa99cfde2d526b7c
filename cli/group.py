"""The `storctl` click group: global options, lazy nouns, and where errors become exits.

Exit codes (CLI.md): 0 done; 1 a bug (traceback); 2 refused, nothing written; 3 the
operation ran and failed, the failure recorded. Noun modules are imported only when
their command runs, or when their verbs are completed; the nouns themselves are
listed, helped and completed from `cli.nouns` without importing any of them.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import click

from cli.nouns import NOUNS
from cli.output import FORMATS

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

# click >= 8.2 answers a bare group with this UsageError, whose message is the help;
# 8.1 printed the help itself and exited 0.
_NO_ARGS: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {})
)


class ExitError(click.ClickException):
    """A `StorctlError` on its way out: one line on stderr, the tree's exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(f"storctl: {one_line(self.format_message())}", err=True)


def one_line(text: str) -> str:
    """Whatever an operator typed (newlines, control characters) is shown escaped,
    so a refusal is always exactly one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class StorctlGroup(click.Group):
    """Loads nouns lazily and translates the error tree in one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *NOUNS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in NOUNS:
            module = importlib.import_module(NOUNS[name][0])
            cmd: click.Command = module.cli
            late_globals(cmd)
            return cmd
        return super().get_command(ctx, name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's, with the nouns among the close matches a mistyped noun is
        offered (`No such command 'volumes'. Did you mean 'volume'?`); click knows
        only `self.commands`, and the nouns are loaded late."""
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            raise click.exceptions.NoSuchCommand(
                name, possibilities=self.list_commands(ctx), ctx=ctx
            )
        return super().resolve_command(ctx, args)

    def shell_complete(
        self, ctx: click.Context, incomplete: str
    ) -> list[CompletionItem]:
        """The nouns with their help from `NOUNS` (click's own would import every
        noun's module to ask it), then the options as click completes them."""
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=NOUNS[name][1])
            for name in sorted(NOUNS)
            if name.startswith(incomplete)
        ]
        items += [
            CompletionItem(name, help=cmd.get_short_help_str())
            for name, cmd in sorted(self.commands.items())
            if name.startswith(incomplete) and not cmd.hidden
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(
        self, ctx: click.Context, formatter: click.HelpFormatter
    ) -> None:
        rows = [(name, NOUNS[name][1]) for name in sorted(NOUNS)]
        rows += [
            (name, (cmd.get_short_help_str(60)))
            for name, cmd in sorted(self.commands.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Click's usage errors in CLI.md's shape: one line on stderr, exit 2."""
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except _NO_ARGS as exc:  # bare `storctl`: click's whole help, on stderr
            click.echo(exc.format_message(), err=True)
            sys.exit(2)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "storctl"
            click.echo(
                f"storctl: {one_line(exc.format_message())} (see: {where} --help)",
                err=True,
            )
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("storctl: aborted", err=True)
            sys.exit(1)
        except Exception as exc:
            from cli.db_failures import database_failure

            line = database_failure(exc)
            if line is None:
                raise  # a bug: its traceback, exit 1
            click.echo(f"storctl: {one_line(line)}", err=True)
            sys.exit(3)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        from ledger.errors import StorctlError

        try:
            return super().invoke(ctx)
        except StorctlError as exc:
            raise ExitError(str(exc), exc.exit_code) from exc
        except Exception as exc:
            refused = _refused_by_server(exc)
            if refused is None:
                raise
            raise ExitError(refused, 2) from exc


def _refused_by_server(exc: BaseException) -> str | None:
    """PostgreSQL's refusal of a write the role may not make (`admin roles`'
    auditor appending, anyone updating a stored event): one line, exit 2; the
    transaction rolled back, so nothing was written."""
    import psycopg

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.errors.InsufficientPrivilege):
            first = str(seen).splitlines()[0] if str(seen) else "permission denied"
            return f"the database refused: {first}"
        seen = seen.__cause__ or seen.__context__
    return None


OUTPUT_HELP = (
    "Output format: table (fitted to the terminal), wide (every column, full "
    "ids), json, yaml or csv (default: table on a terminal, json otherwise)."
)
COLUMNS_HELP = "Only these fields, in this order (e.g. -c id,name,state)."


def _columns(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(c.strip().lower() for c in text.split(",") if c.strip()) or None


def _late_output(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    """`-o` given after the noun or verb: it wins over one given before."""
    from cli.context import AppContext

    obj = ctx.find_object(AppContext)
    if value is not None and obj is not None:
        obj.output = value


def _late_columns(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    from cli.context import AppContext

    obj = ctx.find_object(AppContext)
    if value is not None and obj is not None:
        obj.columns = _columns(value)


def late_globals(cmd: click.Command) -> None:
    """Give every command under `cmd` the global `-o` and `-c` too, so that
    `storctl volume list -o json` works as `storctl -o json volume list` does
    (click parses options per command). Done once per command object."""
    subs = getattr(cmd, "commands", None)
    if isinstance(subs, dict):  # a group, or `audit.ByName`
        for sub in subs.values():
            late_globals(sub)
        if isinstance(cmd, click.Group):
            return
    names = {p.name for p in cmd.params}
    if "late_output" not in names:
        cmd.params.append(
            click.Option(
                ["-o", "--output", "late_output"],
                type=click.Choice(FORMATS),
                expose_value=False,
                callback=_late_output,
                help=OUTPUT_HELP,
            )
        )
    if "late_columns" not in names:
        cmd.params.append(
            click.Option(
                ["-c", "--columns", "late_columns"],
                metavar="A,B,C",
                expose_value=False,
                callback=_late_columns,
                help=COLUMNS_HELP,
            )
        )


@click.group(cls=StorctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="STORCTL_DB",
    metavar="URL",
    help="sqlite:///path/file.db, a file path, or postgresql://user@host:port/db "
    "[env STORCTL_DB; default $XDG_DATA_HOME/storctl/ledger.db]",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default=None,
    envvar="STORCTL_OUTPUT",
    help=OUTPUT_HELP[:-2] + "; env STORCTL_OUTPUT).",
)
@click.option("-c", "--columns", metavar="A,B,C", help=COLUMNS_HELP)
@click.option("--actor", metavar="NAME", help="Who is asking (default: login name).")
@click.option(
    "--profile",
    envvar="STORCTL_PROFILE",
    metavar="NAME",
    help="A profile of config.toml (db, output, actor, columns) [env "
    "STORCTL_PROFILE; default: the profile named default]; `config show` says "
    "where each setting came from.",
)
@click.option(
    "--async",
    "run_async",
    is_flag=True,
    help='Operations return {"jobid": ...} at once instead of waiting.',
)
@click.version_option("0.1.0", prog_name="storctl")
@click.pass_context
def cli(
    ctx: click.Context,
    db: str | None,
    output: str | None,
    columns: str | None,
    actor: str | None,
    profile: str | None,
    run_async: bool,  # noqa: FBT001 - click passes flags positionally
) -> None:
    """Event-sourced CloudStack storage: pools, templates, volumes, snapshots.

    Every change is an append-only event guarded by CloudStack's state machines;
    the tables you know (volumes, storage_pool, ...) are projections of them.

    \b
    Example:
      storctl --db /tmp/lab.db host add kvm-01 --zone z1 --cluster c1
      storctl --db /tmp/lab.db pool add gold --zone z1 --cluster c1 \\
              --path /srv/gold --capacity 100G
      storctl --db /tmp/lab.db -o json pool list
    """
    from cli.context import AppContext
    from cli.profiles import resolve

    client = resolve(ctx, profile=profile, db=db, output=output, actor=actor)
    chosen = _columns(columns)
    if chosen is None and ctx.invoked_subcommand:  # the profile's, for this noun
        listed = client.columns_for(ctx.invoked_subcommand)
        chosen = tuple(c.lower() for c in listed) if listed else None
    ctx.obj = AppContext(
        db_url=client.db_url,
        output=client.output.value,
        actor=client.actor.value,
        run_async=run_async,
        client=client,
        columns=chosen,
    )
    ctx.call_on_close(ctx.obj.close)
