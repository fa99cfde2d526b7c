"""`iscsi`: a managed primary pool on an iSCSI target (CloudStack's SolidFire model).

CloudStack's managed storage gives every volume its own LUN, target and CHAP
account on the storage system, and copies a template whole into a ROOT volume's LUN
instead of cloning a base image on the pool. This provider does the same on Linux's
user-space target, tgtd: a volume is a sparse raw file under the LUN directory,
exported as LUN 1 of its own target, reached by qemu-img over iSCSI (libiscsi) with
the volume's CHAP secret, which never leaves the executor's host.

- location: the portal, `iscsi://HOST:PORT` (`location.validate`);
- credentials: a profile table with tgtd's control port, the portal and the LUN
  directory (`location.Profile`); `pool add` checks that tgtd answers;
- no linked clones, no native snapshots, no staging cache; zone or cluster scope
  (every host of the scope logs in to the same portal).

The provider is `provider.PROVIDER` (the entry point `iscsi`); `driver` is its
table, `volumes` the operations, `copies` the migrations (onto, off, staged),
`targets` and `tgtadm` tgtd, `images` qemu-img over iSCSI, `layout` the names,
`location` the location and its profile, `restore` the targets of a whole pool
(`storctl pool targets`).
"""
