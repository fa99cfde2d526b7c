"""The fake host's fixtures (`test_driver`'s), for every module of the folder."""

from tests.unit.iscsi.test_driver import agent, host, lun_dir  # noqa: F401
