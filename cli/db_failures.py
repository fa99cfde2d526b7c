"""The ledger's own database failing under a command: a full disk, a server restart.

Not a user's mistake and not a bug, so neither exit 2 nor a traceback: an
operational failure (exit 3) in one line. SQLite reports a full disk as "database or
disk is full" (ENOSPC) or "disk I/O error" (EFBIG past a file-size limit); PostgreSQL
as a dropped or refused connection. The transaction that failed is rolled back by
the database, so what the line says holds: the ledger stays as the last committed
transaction left it, and the next command after space (or the server) returns works.

Only the *operational* classes count (`OperationalError`, `InterfaceError` of
sqlite3, psycopg and eventsourcing): an integrity or programming error is a bug and
keeps its traceback.
"""

from __future__ import annotations

import re

#: (module prefix, class name) of the errors that mean "the database failed"
_OPERATIONAL = {
    ("sqlite3", "OperationalError"),
    ("psycopg", "OperationalError"),
    ("psycopg", "InterfaceError"),
    ("eventsourcing", "OperationalError"),
    ("eventsourcing", "InterfaceError"),
}

# A connection error may quote a conninfo string: never echo a password.
_SECRETS = (
    (re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
)


def _operational(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        root = cls.__module__.split(".", 1)[0]
        if (root, cls.__name__) in _OPERATIONAL:
            return True
    return False


def database_failure(exc: BaseException) -> str | None:
    """The one line for `exc` when it (or what it arose from) is the database
    failing; None for anything else, which stays a bug.

    The innermost such error is the one named: SQLite's "cannot rollback - no
    transaction is active" follows from the "disk I/O error" that ended the
    transaction, and only the second tells an operator what happened."""
    found: BaseException | None = None
    seen: BaseException | None = exc
    for _ in range(20):  # a chain is short; a cycle must not hang the exit
        if seen is None:
            break
        if _operational(seen):
            found = seen
        seen = seen.__cause__ or seen.__context__
    if found is None:
        return None
    line = _first_line(found)
    if "disk" in line:
        line += " (is its disk full?)"
    return f"the ledger's database failed: {line}"


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text
