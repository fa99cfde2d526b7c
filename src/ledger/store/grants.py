"""PostgreSQL roles on a ledger's schema: `operator` appends and reads, `auditor`
only reads. What a role may do is the server's to enforce, not storctl's.

- both: USAGE on the schema, SELECT on every table (the log, its hashes, the
  projected tables, the journal), now and for tables created later;
- `operator`: INSERT on every table, UPDATE and DELETE on the projected tables
  and tracking rows (which the followers rewrite), the sequences; on the events
  table UPDATE is granted only because PostgreSQL requires it for the `LOCK TABLE
  ... IN EXCLUSIVE MODE` that orders appends: the append-only trigger refuses
  every UPDATE, and DELETE and TRUNCATE are revoked. On the hashes, INSERT of
  every column but `db_user`, so the server, not the caller, says who appended;
- `auditor`: nothing else. Every write it tries is refused by the server.

Neither role owns a table, so neither can disable the trigger. Names are
`<prefix>operator` and `<prefix>auditor`; roles are cluster-wide, so a prefix
keeps ledgers (and test runs) apart.
"""

from __future__ import annotations

from psycopg import Connection
from psycopg.sql import SQL, Composed, Identifier

ROLES = ("operator", "auditor")
#: the hashes' columns a role may name when appending (not `db_user`)
HASH_COLUMNS = (
    "notification_id",
    "originator_id",
    "originator_version",
    "content",
    "stream",
    "log",
)


def role_names(prefix: str) -> dict[str, str]:
    return {role: f"{prefix}{role}" for role in ROLES}


def _statements(
    schema: str, events: str, operator: str, auditor: str
) -> list[Composed]:
    s = Identifier(schema)
    op, au = Identifier(operator), Identifier(auditor)
    log = SQL("{0}.{1}").format(s, Identifier(events))
    hashes = SQL("{0}.{1}").format(s, Identifier(f"{events}_hashes"))
    columns = SQL(", ").join(Identifier(c) for c in HASH_COLUMNS)
    return [
        SQL("GRANT USAGE ON SCHEMA {0} TO {1}, {2}").format(s, op, au),
        SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {0} TO {1}, {2}").format(s, op, au),
        SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {0} GRANT SELECT ON TABLES TO {1}, {2}"
        ).format(s, op, au),
        SQL("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {0} TO {1}").format(
            s, op
        ),
        SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {0} TO {1}").format(s, op),
        SQL("REVOKE ALL ON {0}, {1} FROM PUBLIC").format(log, hashes),
        SQL("REVOKE DELETE, TRUNCATE ON {0} FROM {1}, {2}").format(log, op, au),
        SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {0} FROM {1}, {2}").format(
            hashes, op, au
        ),
        SQL("GRANT INSERT ({0}) ON {1} TO {2}").format(columns, hashes, op),
        SQL(
            "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {0}"
            " FROM {1}"
        ).format(s, au),
    ]


def create_roles(
    conn: Connection[object], schema: str, events: str, prefix: str
) -> dict[str, str]:
    """Create (or keep) the two login roles and grant them their rights on
    `schema`; returns role -> name. Run by the schema's owner."""
    names = role_names(prefix)
    for name in names.values():
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone()
        if exists is None:
            conn.execute(SQL("CREATE ROLE {0} LOGIN").format(Identifier(name)))
    for statement in _statements(schema, events, names["operator"], names["auditor"]):
        conn.execute(statement)
    return names


def drop_roles(conn: Connection[object], prefix: str) -> list[str]:
    """Drop the two roles (their grants first, in this database); returns the
    names dropped."""
    dropped = []
    for name in role_names(prefix).values():
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone()
        if exists is None:
            continue
        conn.execute(SQL("DROP OWNED BY {0}").format(Identifier(name)))
        conn.execute(SQL("DROP ROLE {0}").format(Identifier(name)))
        dropped.append(name)
    return dropped
