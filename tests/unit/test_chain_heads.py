"""The sealing recorders' cache of the chain's heads (`ledger.store.chain_heads`):
used while this process is the only writer, never trusted after another writer's
append or a failed one, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ledger.aggregate import Ctx
from ledger.hashchain import GENESIS, Chainer, Walked
from ledger.store.chain_heads import ChainHeads
from ledger.store.chain_reads import walk
from ledger.usecases import infrastructure
from ledger.values import Hypervisor
from tests.conftest import open_ledger


def sealed(*events: tuple[int, str, int]) -> list:
    chainer = Chainer(GENESIS, {})
    return [chainer.seal(n, key * 32, v, "t", b"{}") for n, key, v in events]


def test_a_committed_append_is_known_and_a_discarded_one_is_not():
    heads = ChainHeads()
    first = sealed((1, "a", 1), (2, "b", 1))
    heads.stage(first)
    heads.commit()
    assert heads.log_head(3) == first[-1].log
    assert heads.log_head(4) is None  # a position in between: someone appended
    known, missing = heads.stream_heads({"a" * 32: 1, "b" * 32: 2, "c" * 32: 4})
    assert known == {"a" * 32: first[0].stream}
    assert missing == {"b" * 32: 2, "c" * 32: 4}
    heads.stage(sealed((3, "a", 2)))
    heads.discard()  # rolled back
    heads.commit()
    assert heads.log_head(3) == first[-1].log
    assert heads.log_head(4) is None


def test_a_late_commit_of_older_heads_does_not_replace_newer_ones():
    heads = ChainHeads()
    newer = sealed((1, "a", 1), (2, "a", 2))
    heads.stage(newer)
    heads.commit()
    heads.stage(sealed((1, "a", 1)))  # another thread's, committed before
    heads.commit()
    assert heads.log_head(3) == newer[-1].log
    assert heads.stream_heads({"a" * 32: 2})[0] == {"a" * 32: newer[-1].stream}


def test_the_cache_starts_again_past_its_limit():
    heads = ChainHeads(limit=2)
    heads.stage(sealed((1, "a", 1), (2, "b", 1)))
    heads.commit()
    heads.stage(sealed((3, "c", 1)))
    heads.commit()
    known, missing = heads.stream_heads({"a" * 32: 1, "c" * 32: 1})
    assert list(known) == ["c" * 32]
    assert list(missing) == ["a" * 32]


def _append(ledger, k: int) -> None:
    """One event continuing the shared Config aggregate, one a new host."""
    infrastructure.set_config(
        ledger, Ctx.new("t"), "storage.overprovisioning.factor", str(k + 2)
    )
    infrastructure.register_host(
        ledger, Ctx.new("t"), f"h{k}", "z1", "c1", Hypervisor.Simulator
    )


def test_two_writers_interleaved_keep_one_chain(db_url):
    """Two ledgers on one database, as two processes: each one's appends make
    the other's cached log head stale, and the chain still verifies."""
    one, two = open_ledger(db_url), open_ledger(db_url)
    try:
        for k in range(6):
            _append(one if k % 3 else two, k)
        walked = walk(one.recorder)
        assert isinstance(walked, Walked), walked
        assert walked.count >= 12  # 6 configuration changes, 6 hosts
        # both paths taken: heads from the cache, and read after the other's append
        for ledger in (one, two):
            heads = ledger.recorder.heads
            assert heads.hits > 0
            assert heads.misses > 0
    finally:
        one.close()
        two.close()


def test_an_append_failing_after_sealing_leaves_no_head_behind(db_url, monkeypatch):
    ledger = open_ledger(db_url)
    try:
        _append(ledger, 0)
        heads = ledger.recorder.heads
        stage = heads.stage

        def stage_then_fail(s):
            stage(s)
            raise RuntimeError("the append failed after sealing")

        monkeypatch.setattr(heads, "stage", stage_then_fail)
        with pytest.raises(RuntimeError, match="after sealing"):
            infrastructure.set_config(ledger, Ctx.new("t"), "wait", "30")
        monkeypatch.setattr(heads, "stage", stage)
        for k in range(1, 4):
            _append(ledger, k)
        walked = walk(ledger.recorder)
        assert isinstance(walked, Walked), walked
    finally:
        ledger.close()
