"""Stored events into domain events: the mapper's decode, or the same done cheaply.

One decoder for every reader of the log: the engine's followers, the projections,
replay, export and the journal's second process all decode through `decoder`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
    find_id_convertor,
)
from eventsourcing.utils import resolve_topic

from ledger.store.reader import Note

#: hears the text a UTC event time was stored as (`projections.db.known_iso`)
RememberTime = Callable[[datetime, str], None]


def decoder(
    ledger: Application[Any], remember_time: RememberTime | None = None
) -> Callable[[StoredEvent | Note], Any]:
    """The mapper's `to_domain_event` (which reads a `Note` as it reads a stored
    event, its four fields by name), or the same decode done more cheaply.

    The library's JSON object hook is a chain of lookups and `try`s per object,
    and each event pays for its class and id convertor being found again.
    `_fast_decoder` takes the same steps with what is found once per class, and
    hands each event time's text as stored to `remember_time` (the journal's
    `db.known_iso`): writing a time costs more than the rest of its journal row.
    Any event it is not sure to decode exactly as the mapper does (an upcast, an
    odd state) goes to the mapper, errors included; with a cipher or a compressor,
    another transcoder or mapper, the mapper does it all.
    """
    mapper: Any = ledger.mapper
    transcoder = mapper.transcoder
    if (
        mapper.cipher is None
        and mapper.compressor is None
        and type(transcoder) is JSONTranscoder
        and type(mapper) is Mapper
    ):
        return _fast_decoder(mapper, transcoder, remember_time)
    return mapper.to_domain_event  # type: ignore[no-any-return]


def _fast_decoder(
    mapper: Any, transcoder: JSONTranscoder, remember_time: RememberTime | None
) -> Callable[[StoredEvent | Note], Any]:
    by_name: dict[str, Callable[[Any], Any]] = {}
    for name, transcoding in transcoder.names.items():
        kind = type(transcoding)
        if kind is DatetimeAsISO:
            by_name[name] = _datetime_iso(remember_time)
        elif kind is UUIDAsHex:
            by_name[name] = _uuid_hex
        else:
            by_name[name] = transcoding.decode
    library_hook = transcoder._decode_obj

    def hook(d: dict[str, Any]) -> Any:
        if len(d) == 2 and "_type_" in d and "_data_" in d:
            decode = by_name.get(d["_type_"])
            if decode is None:
                return library_hook(d)  # its error
            return decode(d["_data_"])
        return d

    scan = json.JSONDecoder(object_hook=hook).scan_once  # type: ignore[attr-defined]
    #: (topic, type of the stored id) -> (event class, id convertor, version)
    classes: dict[
        tuple[str, type[Any]], tuple[type[Any], Callable[[Any], Any], int]
    ] = {}
    slow = mapper.to_domain_event
    new = object.__new__
    set_dict = object.__setattr__

    def decode(stored: StoredEvent | Note) -> Any:
        oid = stored.originator_id
        found = classes.get((stored.topic, type(oid)))
        if found is None:
            cls = resolve_topic(stored.topic)
            convert = find_id_convertor(cls, cast(Any, type(oid)))
            version = getattr(cls, "class_version", 1)
            found = classes[stored.topic, type(oid)] = (cls, convert, version)
        try:
            text = stored.state.decode("utf8")
            state, end = scan(text, 0)
        except Exception:  # the mapper raises its own error
            return slow(stored)
        if end != len(text) or type(state) is not dict:
            return slow(stored)  # whitespace after, not an object
        cls, convert, version = found
        if state.pop("class_version", 1) < version:
            return slow(stored)  # upcasts: the mapper's
        state["originator_id"] = convert(oid)
        state["originator_version"] = stored.originator_version
        event = new(cls)
        set_dict(event, "__dict__", state)
        return event

    return decode


def _datetime_iso(remember: RememberTime | None) -> Callable[[Any], datetime]:
    """`DatetimeAsISO.decode` (its assertion an error here too), handing the text
    of a UTC time with microseconds to `remember`."""

    def decode(data: Any) -> datetime:
        if type(data) is not str:
            raise TypeError(data)
        moment = datetime.fromisoformat(data)
        if (
            remember is not None
            and len(data) == 32
            and data.endswith("+00:00")
            and data[19] == "."
        ):
            remember(moment, data[:26] + "Z")
        return moment

    return decode


def _uuid_hex(data: Any) -> UUID:
    """`UUIDAsHex.decode`."""
    if type(data) is not str:
        raise TypeError(data)
    return UUID(data)
