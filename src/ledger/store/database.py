"""Where the ledger lives: a database URL turned into eventsourcing's environment.

`sqlite:///path/file.db`, a plain file path, or `postgresql://user@host:port/db`
(`?schema=name` picks a schema, created when missing). The password never leaves this
module: it goes to the driver, not into an event, a log line or an error message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from ledger.errors import DatabaseUnavailable, InvalidInput


@dataclass(frozen=True)
class Database:
    url: str
    kind: str  # "sqlite" or "postgres"
    env: dict[str, str]
    path: Path | None = None
    schema: str | None = None

    @property
    def display(self) -> str:
        """The URL with any password masked, for messages."""
        parsed = urlparse(self.url)
        if parsed.password:
            return self.url.replace(f":{parsed.password}@", ":***@")
        return self.url


def default_url() -> str:
    if os.environ.get("STORCTL_DB"):
        return os.environ["STORCTL_DB"]
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data) / "storctl" / "ledger.db")


def parse_db(url: str | None) -> Database:
    url = url or default_url()
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url)
    path_text = url[len("sqlite:///") - 1 :] if url.startswith("sqlite:///") else url
    if url.startswith("sqlite://") and not url.startswith("sqlite:///"):
        raise InvalidInput("--db", url, "expected sqlite:///path/file.db")
    if "\0" in path_text or not path_text.strip():
        raise InvalidInput("--db", url, "not a usable file path")
    path = Path(path_text).expanduser()
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
        "PROCESS_RECORDER_TOPIC": "ledger.store.sealing:SealingSQLiteRecorder",
    }
    return Database(url=url, kind="sqlite", env=env, path=path)


def _postgres(url: str) -> Database:
    parsed = urlparse(url)
    dbname = parsed.path.lstrip("/") or "postgres"
    query = parse_qs(parsed.query)
    schema = query.get("schema", [None])[0]
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        "PROCESS_RECORDER_TOPIC": (
            "ledger.store.sealing_postgres:SealingPostgresRecorder"
        ),
    }
    if schema:
        if not schema.replace("_", "").isalnum():
            raise InvalidInput("--db schema", schema, "letters, digits and _ only")
        env["POSTGRES_SCHEMA"] = schema
    return Database(url=url, kind="postgres", env=env, schema=schema)


def prepare(db: Database) -> None:
    """Make the place the store needs: the SQLite file's folder, the PG schema."""
    if db.kind == "sqlite":
        assert db.path is not None
        db.path.parent.mkdir(parents=True, exist_ok=True)
        return
    if db.schema:
        import psycopg

        with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
            # Looked up first: CREATE SCHEMA IF NOT EXISTS asks for the right to
            # create before it looks, which `admin roles`' roles do not have.
            found = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (db.schema,)
            ).fetchone()
            if found is None:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"')


def check_ledger_file(db: Database, *, may_create: bool, make_folder: bool) -> None:
    """Refuse a SQLite ledger that is not there before anything is made: a typo in
    `--db` must not read as an empty ledger ("no volumes"). A command that may
    start a ledger makes the file, and its folder only where storctl chose it."""
    if db.kind != "sqlite" or db.path is None or db.path.exists():
        return
    if not may_create:
        raise DatabaseUnavailable(
            db.display, "no such file (this command creates nothing; check --db)"
        )
    if not make_folder and not db.path.parent.is_dir():
        raise DatabaseUnavailable(
            db.display, f"no directory {db.path.parent} (storctl makes no folders)"
        )


def unavailable(db: Database, exc: BaseException) -> DatabaseUnavailable:
    """The driver's refusal (psycopg, sqlite3, eventsourcing's wrappers) as one
    line: libpq's "connection to server at ..., port ... failed: FATAL:" preamble
    dropped, its hint kept, and never the password."""
    parts = []
    for line in str(exc).splitlines():
        text = line.strip()
        if "failed: " in text:
            text = text.rsplit("failed: ", 1)[1]
        text = text.removeprefix("FATAL:").strip()
        if text and text not in parts:
            parts.append(text)
    reason = "; ".join(parts) or type(exc).__name__
    password = urlparse(db.url).password
    for secret in {password, unquote(password)} if password else ():
        reason = reason.replace(secret, "***")
    return DatabaseUnavailable(db.display, reason)


@contextmanager
def ddl_lock(db: Database) -> Iterator[None]:
    """Serialise table creation between processes starting at once.

    Every process creates its tables with CREATE TABLE IF NOT EXISTS, which on
    PostgreSQL can fail when two run it together ("tuple concurrently updated"); a
    session advisory lock makes the first do it and the others find it done."""
    if db.kind != "postgres":
        yield
        return
    import psycopg

    with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('storctl_ddl'))")
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('storctl_ddl'))")


def tables_exist(db: Database, *tables: str) -> bool:
    """Whether every named table is already there (PostgreSQL only; SQLite's
    CREATE TABLE IF NOT EXISTS is cheap and safe under its file lock)."""
    if db.kind != "postgres":
        return False
    import psycopg

    schema = f'"{db.schema}".' if db.schema else ""
    with psycopg.connect(**pg_connect_args(db), autocommit=True) as conn:
        row = conn.execute(
            "SELECT " + ", ".join("to_regclass(%s)" for _ in tables),
            [schema + t for t in tables],
        ).fetchone()
    return row is not None and all(r is not None for r in row)


def pg_connect_args(db: Database) -> dict[str, Any]:
    env = db.env
    args: dict[str, Any] = {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": env["POSTGRES_PORT"],
        "user": env["POSTGRES_USER"],
    }
    if env.get("POSTGRES_PASSWORD"):
        args["password"] = env["POSTGRES_PASSWORD"]
    return args


def database_of(env: Mapping[str, str]) -> Database:
    """The `Database` an application's environment was made from (`parse_db`'s
    inverse, the password kept in `env` only): what a follower's lease needs of
    the ledger it works on."""
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        schema = env.get("POSTGRES_SCHEMA")
        url = (
            f"postgresql://{env['POSTGRES_USER']}@{env['POSTGRES_HOST']}:"
            f"{env['POSTGRES_PORT']}/{env['POSTGRES_DBNAME']}"
            + (f"?schema={schema}" if schema else "")
        )
        return Database(url=url, kind="postgres", env=dict(env), schema=schema)
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.sqlite":
        path = Path(env["SQLITE_DBNAME"])
        return Database(url=str(path), kind="sqlite", env=dict(env), path=path)
    raise InvalidInput(
        "--db", str(env.get("PERSISTENCE_MODULE")), "not a SQLite or PostgreSQL ledger"
    )
