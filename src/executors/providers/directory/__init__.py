"""The directory driver: pools and image stores that are mounted directories.

CloudStack's `KVMStorageProcessor` on a `LibvirtStoragePool` of type `Filesystem`,
`SharedMountPoint` or `NetworkFilesystem`, and the SSVM on an NFS image store: one
file per image, `qemu-img` for every transformation. Its modules are named for what
they hold: `images` (the steps), `templates`, `volumes`, `snapshots`,
`snapshot_copies`, `stats`, `staging` (temporary names), and `driver` (the table
from each operation to the method that does it).
"""
