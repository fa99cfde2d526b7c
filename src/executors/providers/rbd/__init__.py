"""The rbd provider: primary pools on Ceph RBD (CloudStack's KVM + RBD path).

Its modules are named for what they hold: `location` (the pool's URL), `cluster`
(the argv of `rbd`, `ceph` and qemu-img's rbd driver, credentials to keyring,
Ceph's errors as one line), `ceph` (the image steps on one cluster), `pools`
(the RBD pools of one command, and copies between an image and a file),
`volumes`, `snapshots`, `copies` (the operations), `driver` (the table) and
`provider` (the `Provider` value and its `check`).
"""
