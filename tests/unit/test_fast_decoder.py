"""The projections' event decoder (`runner.decoder`) against the library's mapper:
the same events, field by field and in the same order, for every event of a real
simulator session, for upcasts and for states the mapper refuses; and the time
text it hands the journal is what `iso` writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from ledger.app import Ledger
from ledger.store.database import parse_db, prepare
from ledger.store.decoder import _datetime_iso as _decode_time
from ledger.store.reader import selector
from projections import db as db_module
from projections.db import iso, known_iso
from projections.projector import decoder

from .test_audit import simulator_session


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decoder")
    db = parse_db(simulator_session(str(tmp / "ledger.db"), tmp))
    prepare(db)
    app = Ledger(env=db.env)
    yield app
    app.close()


def same(a: object, b: object) -> None:
    assert type(a) is type(b)
    assert list(vars(a).items()) == list(vars(b).items())
    assert [type(v) for v in vars(a).values()] == [type(v) for v in vars(b).values()]


def test_every_event_of_a_session_decodes_as_the_mapper_decodes(ledger):
    decode, mapper = decoder(ledger), ledger.mapper
    assert decode != mapper.to_domain_event  # the fast path is in use
    notes = selector(ledger)(0, 100_000, None)
    assert len(notes) > 50
    for note in notes:
        same(decode(note), mapper.to_domain_event(note))
        event = mapper.to_domain_event(note)
        stored = mapper.to_stored_event(event)
        same(decode(stored), event)  # a StoredEvent as well as a Note


def test_upcasts_whitespace_and_errors_go_to_the_mapper(ledger):
    decode, mapper = decoder(ledger), ledger.mapper
    notes = selector(ledger)(0, 100_000, None)
    note = notes[-1]
    spaced = StoredEvent(
        note.originator_id, note.originator_version, note.topic, note.state + b" \n"
    )
    same(decode(spaced), mapper.to_domain_event(spaced))
    broken = StoredEvent(note.originator_id, note.originator_version, note.topic, b"{")
    with pytest.raises(MapperDeserialisationError):
        decode(broken)
    unknown = StoredEvent(
        note.originator_id,
        note.originator_version,
        note.topic,
        b'{"timestamp":{"_type_":"nope","_data_":1}}',
    )
    with pytest.raises(MapperDeserialisationError):
        decode(unknown)


def test_an_old_class_version_is_upcast(ledger):
    from ledger.pool import StoragePool

    kind = StoragePool.CapacityReserved
    assert getattr(kind, "class_version", 1) > 1
    decode, mapper = decoder(ledger), ledger.mapper
    old = StoredEvent(  # stored before `kept_by_pool`: no class_version
        selector(ledger)(0, 1, None)[0].originator_id,
        3,
        "storctl.StoragePool.CapacityReserved",
        b'{"timestamp":{"_type_":"datetime_iso","_data_":'
        b'"2025-01-02T03:04:05.000006+00:00"},"actor":"a","job_id":null,'
        b'"causation_id":null,"object_id":"x","size":5}',
    )
    expected = mapper.to_domain_event(old)
    assert "kept_by_pool" in vars(expected)  # upcast
    same(decode(old), expected)


_datetime_iso = _decode_time(known_iso)


def test_the_journal_time_is_what_iso_writes():
    db_module._ISO_KNOWN.clear()
    for text in (
        "2025-01-02T03:04:05.000006+00:00",
        "2025-01-02T03:04:05+00:00",  # no microseconds: not handed over
        "2025-01-02T03:04:05.000006+02:00",
    ):
        written = iso(datetime.fromisoformat(text))  # nothing known yet
        assert iso(_datetime_iso(text)) == written
    moment = _datetime_iso("2025-01-02T03:04:05.000006+00:00")
    assert iso(moment) == "2025-01-02T03:04:05.000006Z"
    other = moment.astimezone(timezone(timedelta(hours=2)))
    assert iso(other) == iso(moment)
    assert iso(datetime(2025, 1, 2, 3, 4, 5, 6)) == "2025-01-02T03:04:05.000006Z"
    assert datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC) == moment
