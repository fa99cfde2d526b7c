"""The write side: CloudStack storage as aggregates, state machines and policies.

No I/O here but the event store: executors and projections build on it.
"""
