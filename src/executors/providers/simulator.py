"""`simulator`: pools and image stores of simulator hosts, with no disk I/O.

CloudStack's simulator hypervisor keeps its "storage" in the management server's
database; storctl's keeps none at all. A simulator location is an absolute path that
names nothing on disk (`/sim/p1`), so it is checked for shape only. Its driver
answers every operation as the simulator agent does, saying "simulated: no disk
I/O" in each answer, so a simulated object is never mistaken for a real one.
"""

from __future__ import annotations

from executors.agents.simulator import success_for
from executors.providers.command_run import CommandRun
from executors.providers.driver import Operation, TableDriver
from executors.providers.locations import absolute_path
from executors.providers.provider import SCOPES, Capabilities, Provider, Role
from ledger.commands import Answer, Command


def _simulated(run: CommandRun, command: Command, *objects: object) -> Answer:
    if run.on_progress is not None:
        run.on_progress(1.0)
    return success_for(command)


DRIVER = TableDriver(name="simulator", handlers=dict.fromkeys(Operation, _simulated))

PROVIDER = Provider(
    name="simulator",
    roles=frozenset({Role.PRIMARY, Role.IMAGE}),
    recorded_as="Simulator",
    schemes=("file",),
    validate=absolute_path,
    capabilities=Capabilities(
        linked_clones=True,
        native_snapshots=False,
        needs_staging_cache=False,
        scopes=frozenset(SCOPES),
        disk_io=False,
    ),
    driver=DRIVER,
    summary="Pools and stores of simulator hosts: no disk I/O, nothing to mount.",
)
