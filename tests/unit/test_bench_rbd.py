"""`python -m bench --only rbd` without the lab: skipped with one line saying
why, no figure, no failure (make bench-quick runs it on every machine)."""

from __future__ import annotations

import os

from bench import rbd
from bench.common import Options


def test_without_the_labs_ceph_the_rbd_benchmark_is_skipped_saying_why(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("STORCTL_CREDENTIALS", str(tmp_path / "absent.toml"))
    for key in [k for k in os.environ if k.startswith("STORCTL_CRED_")]:
        monkeypatch.delenv(key)
    figures = rbd.run(Options(quick=True, stores=["sqlite"], workdir=tmp_path))
    assert figures == []
    err = capsys.readouterr().err
    assert err.startswith("# rbd skipped: the lab's Ceph does not answer")
    assert "lab-ceph" in err
    assert len(err.strip().splitlines()) == 1
