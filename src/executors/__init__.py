"""The executors: what CloudStack's agents do on a host, driven by storctl's ledger.

The ledger decides which command to send; the executors carry it out on real files
(`qemu-img` on store directories) and answer with CloudStack's answer classes.
"""
