"""The event log itself: where it lives, how it is read, how its events decode.

`database` turns a URL into eventsourcing's environment; `reader` reads the log and
aggregates' events in one statement each; `decoder` turns stored events into domain
events; `repository` is the aggregate cache the application loads through. Every
raw query of the log lives here, once.
"""
