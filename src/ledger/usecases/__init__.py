"""What an operator can ask of storctl, as plain functions by noun.

CloudStack's API commands (`createVolume`, `deployVirtualMachine`, `createSnapshot`,
...) become functions taking the ledger (`ledger.app.Ledger`) and the request context
(`Ctx`): each checks everything an operator can get wrong (refused, exit 2, nothing
written), then decides inside `Ledger.atomic` and saves the new objects, the job and
the first command request in one save. What follows an agent's answer is the
workflows' business (`ledger.workflows`). As cosmicpython's handlers: no class, no
state of their own.

    infrastructure  hosts, pools, image stores, configuration
    simulator       fault plans of simulator hosts
    templates       register, delete, create from a volume or snapshot
    vms             deploy, start/stop, destroy
    volumes         create, attach, detach, delete, recover, expunge, resize
    snapshots       take, delete, revert, volumes from snapshots
    migration       StorageMotion between pools
    placement       choosing a pool (the allocator chain, with the why recorded)
    answers         an agent's answer folded on the object that asked
    claims          unique names, and saving what claims one
"""
