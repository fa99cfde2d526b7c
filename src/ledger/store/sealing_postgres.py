"""The PostgreSQL half of `ledger.store.sealing`: the recorder that seals every
append under the table lock the library takes for positions, and the trigger that
keeps stored history append-only.

Its own module so that nothing on SQLite imports psycopg (a command's start-up
time, issue 20): `database.py` names it by topic, loaded only for a PostgreSQL
ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg.sql import SQL, Composed, Identifier

from ledger.hashchain import GENESIS, Chainer
from ledger.store.chain_heads import ChainHeads
from ledger.store.sealing import PAGE, _continued, _row, _seal_all


def _guard_function(schema: str) -> Composed:
    return SQL(
        "CREATE OR REPLACE FUNCTION {0}.storctl_history_is_append_only()"
        " RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " RAISE EXCEPTION 'stored history is append-only: % on % refused',"
        " TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';"
        " END $$"
    ).format(Identifier(schema))


def _guard_triggers(schema: str, table: str) -> list[Composed]:
    target = SQL("{0}.{1}").format(Identifier(schema), Identifier(table))
    function = SQL("{0}.storctl_history_is_append_only()").format(Identifier(schema))
    return [
        SQL(
            "CREATE OR REPLACE TRIGGER storctl_append_only BEFORE UPDATE OR DELETE"
            " ON {0} FOR EACH ROW EXECUTE FUNCTION {1}"
        ).format(target, function),
        SQL(
            "CREATE OR REPLACE TRIGGER storctl_no_truncate BEFORE TRUNCATE"
            " ON {0} FOR EACH STATEMENT EXECUTE FUNCTION {1}"
        ).format(target, function),
    ]


class SealingPostgresRecorder(PostgresProcessRecorder):
    """PostgreSQL's process recorder, sealing every append under the table lock
    the library takes for positions."""

    #: the server records who appended (`db_user`), not the caller
    records_session_user = True

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.hashes_table_name = f"{self.events_table_name}_hashes"
        schema = Identifier(self.datastore.schema)
        h = SQL("{0}.{1}").format(schema, Identifier(self.hashes_table_name))
        self.hashes_table = h
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (notification_id bigint PRIMARY KEY,"
                " originator_id text NOT NULL, originator_version bigint NOT NULL,"
                " content bytea NOT NULL, stream bytea NOT NULL, log bytea NOT NULL,"
                " db_user text NOT NULL DEFAULT session_user,"
                " UNIQUE (originator_id, originator_version))"
            ).format(h)
        )
        self.sql_create_statements.append(_guard_function(self.datastore.schema))
        for table in (self.events_table_name, self.hashes_table_name):
            self.sql_create_statements.extend(
                _guard_triggers(self.datastore.schema, table)
            )
        self.heads_statement = SQL(
            "(SELECT NULL::text AS originator_id, log AS hash FROM {0}"
            " ORDER BY notification_id DESC LIMIT 1) UNION ALL"
            " SELECT originator_id, stream FROM {0}"
            " WHERE (originator_id, originator_version) IN"
            " (SELECT * FROM unnest(%s::text[], %s::bigint[]))"
        ).format(h)
        self.insert_hashes_statement = SQL(
            "INSERT INTO {0} (notification_id, originator_id, originator_version,"
            " content, stream, log) VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(h)
        #: one statement for a whole save's hash rows (the pipeline would send
        #: and the server run one INSERT per event)
        self.insert_hashes_at_once_statement = SQL(
            "INSERT INTO {0} (notification_id, originator_id, originator_version,"
            " content, stream, log) SELECT * FROM unnest(%s::bigint[], %s::text[],"
            " %s::bigint[], %s::bytea[], %s::bytea[], %s::bytea[])"
        ).format(h)
        self._principal: str | None = None
        #: the heads this process last committed (`chain_heads`)
        self.heads = ChainHeads()

    @property
    def principal(self) -> str:
        """The role the server sees this recorder's sessions as."""
        if self._principal is None:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute("SELECT session_user AS who")
                row = curs.fetchone()
                assert row is not None
                self._principal = str(row["who"])
        return self._principal

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            curs.execute(
                SQL("SELECT 1 AS one FROM {0} LIMIT 1").format(self.hashes_table)
            )
            if curs.fetchone() is None:
                self._seal_existing(curs)

    def _seal_existing(self, curs: Any) -> None:
        table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        chainer, after = Chainer(GENESIS, {}), 0
        while True:
            curs.execute(
                SQL(
                    "SELECT notification_id, originator_id, originator_version,"
                    " topic, state FROM {0} WHERE notification_id > %s"
                    " ORDER BY notification_id LIMIT %s"
                ).format(table),
                (after, PAGE),
            )
            rows = curs.fetchall()
            if not rows:
                return
            sealed = [
                chainer.seal(
                    r["notification_id"],
                    r["originator_id"],
                    r["originator_version"],
                    r["topic"],
                    r["state"],
                )
                for r in rows
            ]
            curs.executemany(self.insert_hashes_statement, [_row(s) for s in sealed])
            after = rows[-1]["notification_id"]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        except BaseException:
            self.heads.discard()
            raise
        self.heads.commit()
        return ids

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self.heads.discard()
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if not ids:
            return ids
        log_head = self.heads.log_head(ids[0])
        heads, missing = self.heads.stream_heads(_continued(stored_events))
        if log_head is None or missing:
            # one round trip for whatever this process does not know
            curs.execute(
                self.heads_statement,
                (list(missing), list(missing.values())),
                prepare=True,
            )
            log_head = GENESIS
            for row in curs.fetchall():
                if row["originator_id"] is None:
                    log_head = row["hash"]
                else:
                    heads[row["originator_id"]] = row["hash"]
        sealed = _seal_all(Chainer(log_head, heads), ids, stored_events)
        columns = [list(c) for c in zip(*(_row(s) for s in sealed), strict=True)]
        curs.execute(self.insert_hashes_at_once_statement, columns, prepare=True)
        self.heads.stage(sealed)
        return ids
