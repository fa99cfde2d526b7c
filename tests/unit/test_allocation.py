"""CloudStack's allocator rules, one at a time, each with the words of its verdict."""

from __future__ import annotations

import random

import pytest

from ledger.allocation import filters
from ledger.allocation.chain import allocate, pick
from ledger.allocation.cleanup import collect_garbage
from ledger.allocation.filters import FILTERS, SUITABILITY, Thresholds, refusal
from ledger.allocation.views import PoolView, Request
from ledger.values import GiB, PoolStatus, Scope


def pool(
    name,
    *,
    scope=Scope.CLUSTER,
    cluster="c1",
    host=None,
    status=PoolStatus.Up,
    tags=(),
    capacity=10 * GiB,
    allocated=0,
    factor=1.0,
    volumes=0,
    has_template=False,
    zone="z1",
    used=0,
):
    return PoolView(
        id=f"id-{name}",
        name=name,
        scope=scope,
        zone_id=zone,
        cluster_id=cluster,
        host_id=host,
        status=status,
        tags=tuple(tags),
        capacity=capacity,
        allocated=allocated,
        factor=factor,
        volumes=volumes,
        has_template=has_template,
        used=used,
    )


def req(size=GiB, **kw):
    kw.setdefault("zone_id", "z1")
    kw.setdefault("cluster_id", "c1")
    return Request(size=size, **kw)


class TestRefusals:
    def test_capacity_past_threshold_is_refused_in_words(self):
        why = refusal(pool("p", allocated=8 * GiB), req(int(1.1 * GiB)), 0.85)
        assert why == "would reach 91% of 10 GiB, over the 85% threshold"

    def test_physical_use_reaching_its_threshold_is_refused_in_words(self):
        # checkUsagedSpace: used / capacity at or over the threshold refuses, even
        # when the allocated size would pass
        full = pool("p", used=int(8.5 * GiB))
        assert refusal(full, req(GiB), 0.85, used_threshold=0.85) == (
            "85% used on disk (8.50 GiB of 10 GiB), at or over the 85% used threshold"
        )
        assert refusal(full, req(GiB), 0.85, used_threshold=0.9) is None
        assert refusal(pool("p", used=8 * GiB), req(GiB), 0.85) is None
        assert refusal(pool("p", used=0), req(GiB), 0.85, used_threshold=0.0) is None

    def test_exactly_the_threshold_is_accepted(self):
        p = pool("p", capacity=100 * GiB, allocated=84 * GiB)
        assert refusal(p, req(GiB), 0.85) is None
        assert refusal(p, req(GiB + 1), 0.85) is not None

    def test_overprovisioning_multiplies_capacity(self):
        p = pool("p", capacity=10 * GiB, allocated=15 * GiB, factor=2.0)
        assert refusal(p, req(GiB), 0.85) is None
        assert "of 20 GiB" in refusal(p, req(3 * GiB), 0.85)

    def test_template_not_yet_cached_counts_against_the_pool(self):
        p = pool("p", allocated=7 * GiB)
        assert refusal(p, req(GiB, template_size=GiB), 0.85) is not None
        cached = pool("p", allocated=7 * GiB, has_template=True)
        assert refusal(cached, req(GiB, template_size=GiB), 0.85) is None

    @pytest.mark.parametrize(
        ("status", "words"),
        [
            (PoolStatus.Maintenance, "in Maintenance"),
            (PoolStatus.Disabled, "in Disabled"),
            (PoolStatus.PrepareForMaintenance, "in PrepareForMaintenance"),
        ],
    )
    def test_only_up_pools_take_volumes(self, status, words):
        assert refusal(pool("p", status=status), req(), 0.85) == words

    def test_every_tag_of_the_disk_must_be_on_the_pool(self):
        assert refusal(pool("p", tags=["fast"]), req(tags=("ssd", "fast")), 0.85) == (
            "tags ssd missing"
        )
        assert (
            refusal(pool("p", tags=["ssd", "fast", "x"]), req(tags=("ssd",)), 0.85)
            is None
        )

    def test_avoid_set(self):
        assert refusal(pool("p"), req(avoid=("id-p",)), 0.85) == "in the avoid set"


class TestFilters:
    """One filter per question (Cinder's shape): a name, and why it refuses."""

    def test_each_question_is_asked_by_one_filter_with_its_own_name(self):
        names = [f.name for f in FILTERS]
        assert len(names) == len(set(names))
        assert [f.name for f in SUITABILITY] == [
            "avoid",
            "status",
            "tags",
            "used",
            "allocated",
        ]

    def test_refusal_keeps_the_first_refusing_filter_in_cloudstacks_order(self):
        # avoided, down, untagged, full on disk and over the threshold at once
        hopeless = pool(
            "p",
            status=PoolStatus.Disabled,
            used=10 * GiB,
            allocated=10 * GiB,
        )
        request = req(tags=("ssd",), avoid=("id-p",))
        thresholds = Thresholds(0.85, 0.85)
        words = [f(hopeless, request, thresholds) for f in SUITABILITY]
        assert all(words)
        assert refusal(hopeless, request, 0.85, 0.85) == words[0]
        assert words[1:3] == ["in Disabled", "tags ssd missing"]

    def test_the_template_counts_unless_cached_and_the_words_say_so(self):
        p = pool("p", allocated=7 * GiB)
        why = filters.allocated(p, req(GiB, template_size=GiB), Thresholds(0.85))
        assert why == (
            "would reach 90% of 10 GiB, over the 85% threshold"
            " (with the template, 1 GiB)"
        )

    @pytest.mark.parametrize(
        ("rule", "view", "request_", "words"),
        [
            (filters.data_center, pool("p", zone="z2"), req(), "in zone z2"),
            (
                filters.requested,
                pool("p"),
                req(pool_id="id-q"),
                "not the requested pool",
            ),
            (filters.requested, pool("p"), req(), None),
            (filters.local, pool("p"), req(host_id="h1"), "not local storage"),
            (
                filters.local,
                pool("p", scope=Scope.HOST, host="h2"),
                req(host_id="h1"),
                "local to another host",
            ),
            (filters.cluster, pool("p", scope=Scope.ZONE), req(), "not cluster scope"),
            (
                filters.cluster,
                pool("p", cluster="c2"),
                req(cluster_id="c1"),
                "in cluster c2, the host is in c1",
            ),
            (filters.cluster, pool("p", cluster="c2"), req(cluster_id=None), None),
            (filters.zone_wide, pool("p"), req(), "not zone-wide"),
            (filters.zone_wide, pool("p", scope=Scope.ZONE), req(), None),
        ],
    )
    def test_each_scope_question_says_why_in_its_words(
        self, rule, view, request_, words
    ):
        assert rule(view, request_, Thresholds(0.85)) == words


class TestChain:
    def test_cluster_scope_wins_before_zone_wide(self):
        d = allocate(
            req(), [pool("zonewide", scope=Scope.ZONE, cluster=None), pool("c")], 0.85
        )
        assert d.chosen == "id-c"
        zone_verdict = next(v for v in d.verdicts if v.pool == "zonewide")
        assert zone_verdict.reason == "not reached: an earlier allocator found a pool"

    def test_zone_wide_when_no_cluster_pool_fits(self):
        pools = [
            pool("c", allocated=9 * GiB),
            pool("zw", scope=Scope.ZONE, cluster=None),
        ]
        d = allocate(req(), pools, 0.85)
        assert d.chosen == "id-zw"
        by_pool = {v.pool: v for v in d.verdicts}
        assert by_pool["c"].allocator == "cluster"
        assert by_pool["c"].reason.startswith("would reach")
        assert by_pool["zw"].taken

    def test_other_clusters_are_out_of_scope_and_say_so(self):
        d = allocate(req(cluster_id="c1"), [pool("far", cluster="c2")], 0.85)
        assert d.chosen is None
        assert d.verdicts[0].reason == "in cluster c2, the host is in c1"

    def test_local_storage_only_when_asked_and_only_on_the_vms_host(self):
        local = pool("local", scope=Scope.HOST, host="h1", cluster="c1")
        other = pool("other", scope=Scope.HOST, host="h2", cluster="c1")
        d = allocate(req(host_id="h1"), [local, other], 0.85)
        assert d.chosen is None
        assert {v.reason for v in d.verdicts} == {
            "local storage, and the disk does not ask for it"
        }
        d = allocate(req(host_id="h1", local=True), [local, other], 0.85)
        assert d.chosen == "id-local"
        assert next(v for v in d.verdicts if v.pool == "other").reason == (
            "local to another host"
        )

    def test_requested_pool_is_the_only_candidate(self):
        d = allocate(req(pool_id="id-b"), [pool("a"), pool("b")], 0.85)
        assert d.chosen == "id-b"
        assert next(v for v in d.verdicts if v.pool == "a").reason == (
            "not the requested pool"
        )

    def test_every_pool_of_the_zone_gets_exactly_one_verdict(self):
        pools = [
            pool("a", allocated=9 * GiB),
            pool("b", status=PoolStatus.Disabled),
            pool("c", cluster="c9"),
            pool("d", scope=Scope.HOST, host="h"),
        ]
        d = allocate(req(), pools, 0.85)
        assert d.chosen is None
        assert sorted(v.pool for v in d.verdicts) == ["a", "b", "c", "d"]
        assert all(v.reason for v in d.verdicts)
        assert "a:" in d.summary()


def picked_in_turn(pools, algorithm, seed=0):
    """The order `pick` takes the pools in, each taken one removed from the rest."""
    rest, out = list(pools), []
    while rest:
        taken = pick(rest, algorithm, random.Random(seed))
        out.append(taken.name)
        rest.remove(taken)
    return out


class TestOrderings:
    pools = [
        pool("a", allocated=5 * GiB, volumes=9),
        pool("b", allocated=1 * GiB, volumes=1),
        pool("c", allocated=3 * GiB, volumes=5),
    ]

    def test_firstfit_takes_them_as_listed(self):
        assert picked_in_turn(self.pools, "firstfit") == ["a", "b", "c"]

    def test_firstfitleastconsumed_takes_the_emptiest_first(self):
        assert picked_in_turn(self.pools, "firstfitleastconsumed") == ["b", "c", "a"]

    def test_userdispersing_takes_the_fewest_volumes_first(self):
        assert picked_in_turn(self.pools, "userdispersing") == ["b", "c", "a"]

    def test_random_is_a_permutation_and_reproducible_by_seed(self):
        one = picked_in_turn(self.pools, "random", seed=7)
        two = picked_in_turn(self.pools, "random", seed=7)
        assert one == two
        assert sorted(one) == ["a", "b", "c"]
        seen = {tuple(picked_in_turn(self.pools, "random", seed=s)) for s in range(30)}
        assert len(seen) > 1


class TestGarbageCollecting:
    """The last allocator: the chain again as if unused template copies were gone."""

    def test_takes_the_pool_cleanup_frees_and_keeps_the_other_verdicts(self):
        pools = [
            pool("a", allocated=8 * GiB),  # cleanup frees too little here
            pool("b", allocated=8 * GiB),  # and enough here
            pool("c", status=PoolStatus.Maintenance),
        ]
        request = req(2 * GiB)
        refused = allocate(request, pools, 0.85)
        assert refused.chosen is None
        decision = collect_garbage(
            request, pools, {"id-a": GiB // 2, "id-b": 2 * GiB}, 0.85, refused
        )
        assert decision.chosen == "id-b"
        by_pool = {v.pool: v for v in decision.verdicts}
        assert by_pool["b"].allocator == "garbage"
        assert by_pool["b"].reason == (
            "taken after cleaning up unused template copies (2 GiB)"
        )
        assert by_pool["a"] == next(v for v in refused.verdicts if v.pool == "a")
        assert by_pool["c"].reason == "in Maintenance"
        assert len(decision.verdicts) == len(pools)

    def test_a_pool_cleanup_cannot_make_suitable_stays_refused(self):
        pools = [pool("a", allocated=8 * GiB, tags=("hdd",))]
        request = req(GiB, tags=("ssd",))
        refused = allocate(request, pools, 0.85)
        assert collect_garbage(request, pools, {"id-a": 8 * GiB}, 0.85, refused) is (
            refused
        )

    def test_nothing_to_clean_or_a_pool_already_chosen_changes_nothing(self):
        pools = [pool("a", allocated=9 * GiB), pool("b")]
        request = req(GiB)
        refused = allocate(request, pools[:1], 0.85)
        assert collect_garbage(request, pools[:1], {}, 0.85, refused) is refused
        taken = allocate(request, pools, 0.85)
        assert taken.chosen == "id-b"
        assert collect_garbage(request, pools, {"id-a": GiB}, 0.85, taken) is taken
