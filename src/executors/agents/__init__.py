"""The agents: one per hypervisor, like CloudStack's `ServerResource` implementations.

Each takes a `ledger.commands` command and returns its answer, never raising, so a
failure becomes a recorded `result=false` answer instead of a lost job.
"""
