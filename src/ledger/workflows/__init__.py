"""Workflows: the policy that decides the next step of an operation from each answer.

CloudStack chains callbacks (`createVolumeFromBaseImageCallback`, ...); here each
`...Answered` event is followed by a decision: the next request, the compensation of
a failure (release the reservation, put the volume back where CloudStack's table
says), or the settling of the job. `table.STEPS` maps each answer event to its step;
a step is a pure decision over the event and the aggregates it loads, returning what
to save. The follower (`executors.engine`) saves that, with its tracking record, in
one transaction; `replay verify` decides again over the recorded log.

    table         event class -> step; `decide`
    answers       what every step reads of an answer event and its job
    compensation  what a failed or finished step gives back
    volumes templates snapshots migration copies    the steps, by what they settle
"""

from ledger.workflows.table import decide

__all__ = ["decide"]
