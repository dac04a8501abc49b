from collections import Counter, defaultdict
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviews.campaigns.planning import (
    PlannedAssignment,
    plan_assignments,
    plan_reassignment,
    select_items,
)

REVIEWERS = ["ana", "ben", "cho", "dev", "eli"]


def reviewers_per_item(plan):
    by_item = defaultdict(list)
    for a in plan:
        by_item[a.item_id].append(a.reviewer)
    return by_item


def loads(plan, reviewers, existing_load=None):
    count = Counter(a.reviewer for a in plan)
    return {r: count[r] + (existing_load or {}).get(r, 0) for r in reviewers}


def assert_valid_plan(plan, items, reviewers, k, existing_load=None, existing_positions=None):
    """Every contract of plan_assignments that holds for all inputs with a level existing load."""
    by_item = reviewers_per_item(plan)
    assert set(by_item) == set(items)
    for item in items:
        assert len(by_item[item]) == k
        assert len(set(by_item[item])) == k

    total = loads(plan, reviewers, existing_load)
    assert max(total.values()) - min(total.values()) <= 1

    new = Counter(a.reviewer for a in plan)
    left_by_reviewer = Counter(a.reviewer for a in plan if a.candidate_left)
    for r in reviewers:
        assert abs(2 * left_by_reviewer[r] - new[r]) <= 1, r
    left_by_item = Counter(a.item_id for a in plan if a.candidate_left)
    for item in items:
        assert left_by_item[item] in (k // 2, (k + 1) // 2), item

    queues = defaultdict(list)
    for a in plan:
        queues[a.reviewer].append(a)
    for r, queue in queues.items():
        start = (existing_positions or {}).get(r, 0)
        assert sorted(a.position for a in queue) == list(range(start, start + len(queue)))
        batches = [a.batch_index for a in sorted(queue, key=lambda a: a.position)]
        assert batches == sorted(batches)  # a reviewer works through batch 0 before batch 1

    batch_of = {a.item_id: a.batch_index for a in plan}
    assert all(batch_of[a.item_id] == a.batch_index for a in plan)


@settings(deadline=None)
@given(
    n_items=st.integers(1, 200),
    n_reviewers=st.integers(1, 12),
    data=st.data(),
    seed=st.integers(0, 2**32),
)
def test_plan_properties_hold_for_random_sizes(n_items, n_reviewers, data, seed):
    k = data.draw(st.integers(1, n_reviewers), label="k")
    batch_size = data.draw(st.none() | st.integers(1, 60), label="batch_size")
    base = data.draw(st.integers(0, 50), label="base load")
    bumps = data.draw(st.lists(st.booleans(), min_size=n_reviewers, max_size=n_reviewers))
    items = [f"item-{i}" for i in range(n_items)]
    reviewers = [f"r{i}" for i in range(n_reviewers)]
    existing_load = {r: base + bump for r, bump in zip(reviewers, bumps, strict=True)}
    existing_positions = dict.fromkeys(reviewers, base * 2)

    plan = plan_assignments(
        items,
        reviewers,
        k=k,
        seed=seed,
        batch_size=batch_size,
        existing_load=existing_load,
        existing_positions=existing_positions,
    )

    assert_valid_plan(plan, items, reviewers, k, existing_load, existing_positions)
    assert len(plan) == n_items * k
    items_per_batch = Counter({a.item_id: a.batch_index for a in plan}.values())
    size = batch_size or n_items
    assert list(items_per_batch.values()) == [
        min(size, n_items - b * size) for b in items_per_batch
    ]
    assert sorted(items_per_batch) == list(range(len(items_per_batch)))


def test_every_item_gets_exactly_k_distinct_reviewers():
    plan = plan_assignments(range(101), REVIEWERS, k=3, seed=7)

    assert all(len(rs) == 3 and len(set(rs)) == 3 for rs in reviewers_per_item(plan).values())
    assert len(reviewers_per_item(plan)) == 101


def test_load_is_balanced_within_one():
    plan = plan_assignments(range(101), REVIEWERS, k=3, seed=7)

    assert sorted(loads(plan, REVIEWERS).values()) == [60, 60, 61, 61, 61]


def test_which_reviewers_take_the_odd_items_is_drawn_from_the_seed():
    heaviest = {
        Counter(
            a.reviewer for a in plan_assignments(range(4), REVIEWERS[:3], k=1, seed=s)
        ).most_common(1)[0][0]
        for s in range(30)
    }

    assert heaviest == set(REVIEWERS[:3])


def test_existing_load_is_caught_up_before_new_work_is_shared():
    existing = {"ana": 10, "ben": 4}

    plan = plan_assignments(range(19), ["ana", "ben", "cho"], k=1, seed=3, existing_load=existing)

    assert Counter(a.reviewer for a in plan) == {"ana": 1, "ben": 7, "cho": 11}
    assert set(loads(plan, ["ana", "ben", "cho"], existing).values()) == {11}


def test_repeated_rounds_stay_balanced():
    reviewers = REVIEWERS[:4]
    total = Counter()
    for round_ in range(5):
        items = [f"{round_}-{i}" for i in range(7)]
        plan = plan_assignments(items, reviewers, k=2, seed=round_, existing_load=total)
        total.update(a.reviewer for a in plan)

        assert max(total.values()) - min(total.values()) <= 1


@pytest.mark.parametrize(("n_items", "k"), [(1, 1), (9, 2), (50, 3), (51, 5), (200, 4)])
def test_candidate_left_for_half_of_each_reviewers_items(n_items, k):
    plan = plan_assignments(range(n_items), REVIEWERS, k=k, seed=11, batch_size=7)

    for r in REVIEWERS:
        sides = [a.candidate_left for a in plan if a.reviewer == r]
        assert abs(2 * sum(sides) - len(sides)) <= 1


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_each_item_is_shown_both_ways_round_as_evenly_as_k_allows(k):
    plan = plan_assignments(range(60), REVIEWERS, k=k, seed=5, batch_size=9)

    left = Counter(a.item_id for a in plan if a.candidate_left)
    assert {left[i] for i in range(60)} <= {k // 2, (k + 1) // 2}


def test_left_side_is_randomised_by_the_seed():
    sides = {
        next(
            a.candidate_left
            for a in plan_assignments(range(10), ["ana", "ben"], k=2, seed=seed)
            if a.item_id == 0 and a.reviewer == "ana"
        )
        for seed in range(40)
    }

    assert sides == {True, False}


def test_left_side_follows_no_alternating_pattern_in_a_queue():
    plan = plan_assignments(range(2000), REVIEWERS, k=2, seed=1)
    queue = [a.candidate_left for a in plan if a.reviewer == "ana"]  # plan is in queue order

    repeats = sum(a == b for a, b in pairwise(queue)) / (len(queue) - 1)

    assert 0.4 < repeats < 0.6


def test_positions_are_a_shuffled_queue_per_reviewer():
    plan = plan_assignments(range(300), REVIEWERS, k=2, seed=2)

    for r in REVIEWERS:
        queue = [a for a in plan if a.reviewer == r]
        assert [a.position for a in queue] == list(range(len(queue)))
        item_order = [a.item_id for a in queue]
        assert item_order != sorted(item_order)


def test_positions_continue_after_existing_positions():
    plan = plan_assignments(range(10), ["ana", "ben"], k=1, seed=2, existing_positions={"ana": 40})

    assert sorted(a.position for a in plan if a.reviewer == "ana") == list(range(40, 45))
    assert sorted(a.position for a in plan if a.reviewer == "ben") == list(range(5))


def test_batches_hold_batch_size_items_in_shuffled_order():
    plan = plan_assignments(range(25), REVIEWERS, k=2, seed=9, batch_size=10)

    batch_of = {a.item_id: a.batch_index for a in plan}
    assert Counter(batch_of.values()) == {0: 10, 1: 10, 2: 5}
    assert [i for i in range(25) if batch_of[i] == 0] != list(range(10))
    # Every batch is spread over the reviewers, not handed to a few of them.
    for b in range(2):
        assert {a.reviewer for a in plan if a.batch_index == b} == set(REVIEWERS)


def test_same_seed_gives_identical_plan():
    first = plan_assignments(range(80), REVIEWERS, k=3, seed=42, batch_size=16)
    again = plan_assignments(range(80), REVIEWERS, k=3, seed=42, batch_size=16)

    assert first == again
    assert all(isinstance(a, PlannedAssignment) for a in first)


def test_different_seeds_give_different_plans():
    first = plan_assignments(range(80), REVIEWERS, k=3, seed=42, batch_size=16)
    other = plan_assignments(range(80), REVIEWERS, k=3, seed=43, batch_size=16)

    assert first != other
    assert {(a.item_id, a.reviewer) for a in first} != {(a.item_id, a.reviewer) for a in other}


def test_planned_assignment_is_frozen():
    a = plan_assignments(["x"], ["ana"], k=1, seed=0)[0]

    with pytest.raises(AttributeError):
        a.candidate_left = not a.candidate_left


def test_no_items_gives_an_empty_plan():
    assert plan_assignments([], REVIEWERS, k=2, seed=0) == []


def test_k_greater_than_reviewers_is_rejected():
    with pytest.raises(ValueError, match=r"k=4 distinct reviewers .* got 3"):
        plan_assignments(range(5), REVIEWERS[:3], k=4, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be at least 1"),
        ({"k": 1, "batch_size": 0}, "batch_size must be at least 1"),
        ({"k": 1, "seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_plan_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_assignments(range(5), REVIEWERS, **{"seed": 0, **kwargs})


def test_duplicates_are_rejected():
    with pytest.raises(ValueError, match="duplicate reviewer 'ana'"):
        plan_assignments(range(5), ["ana", "ana"], k=1, seed=0)
    with pytest.raises(ValueError, match="duplicate item id 3"):
        plan_assignments([1, 3, 3], ["ana"], k=1, seed=0)


# select_items

ITEMS = [
    (f"i{n}", {"lang": lang}) for n, lang in enumerate(["en"] * 600 + ["fr"] * 300 + ["de"] * 100)
]


def test_select_all_keeps_every_item_in_order():
    assert select_items(ITEMS, mode="all", seed=0) == [i for i, _ in ITEMS]


def test_sample_picks_n_distinct_items_reproducibly():
    sample = select_items(ITEMS, mode="sample", n=50, seed=4)

    assert len(set(sample)) == 50
    assert set(sample) <= {i for i, _ in ITEMS}
    assert sample == select_items(ITEMS, mode="sample", n=50, seed=4)
    assert sample != select_items(ITEMS, mode="sample", n=50, seed=5)


def test_stratified_sample_is_proportional():
    chosen = set(select_items(ITEMS, mode="stratified", n=100, key="lang", seed=1))

    langs = Counter(meta["lang"] for i, meta in ITEMS if i in chosen)
    assert langs == {"en": 60, "fr": 30, "de": 10}


def test_stratified_sample_takes_one_from_every_stratum_when_n_allows():
    items = [(n, {"lang": lang}) for n, lang in enumerate(["en"] * 97 + ["fr"] * 2 + ["de"])]

    chosen = select_items(items, mode="stratified", n=10, key="lang", seed=1)

    langs = Counter(items[i][1]["lang"] for i in chosen)
    assert langs == {"en": 8, "fr": 1, "de": 1}


def test_stratified_sample_smaller_than_the_number_of_strata_takes_one_each_from_n():
    items = [(n, {"region": n % 7}) for n in range(70)]

    chosen = select_items(items, mode="stratified", n=4, key="region", seed=8)

    assert len({items[i][1]["region"] for i in chosen}) == 4


def test_items_without_the_key_form_their_own_stratum():
    items = [(n, {"lang": "en"}) for n in range(50)] + [(n, {}) for n in range(50, 100)]

    chosen = select_items(items, mode="stratified", n=10, key="lang", seed=0)

    assert sum(i >= 50 for i in chosen) == 5


@settings(deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    data=st.data(),
    seed=st.integers(0, 2**32),
)
def test_stratified_allocation_properties(sizes, data, seed):
    items = [(f"{s}-{j}", {"s": s}) for s, size in enumerate(sizes) for j in range(size)]
    n = data.draw(st.integers(0, len(items)), label="n")

    chosen = select_items(items, mode="stratified", n=n, key="s", seed=seed)

    assert len(chosen) == len(set(chosen)) == n
    got = Counter(int(i.split("-")[0]) for i in chosen)
    quotas = [n * size / len(items) for size in sizes]
    if n >= len(sizes):
        assert all(got[s] >= 1 for s in range(len(sizes)))
    if all(q >= 1 for q in quotas):
        assert all(abs(got[s] - q) < 1 for s, q in enumerate(quotas))
    assert chosen == select_items(items, mode="stratified", n=n, key="s", seed=seed)


def test_stratified_sample_differs_by_seed():
    first = select_items(ITEMS, mode="stratified", n=100, key="lang", seed=1)

    assert first != select_items(ITEMS, mode="stratified", n=100, key="lang", seed=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "sample", "n": 1001}, "cannot select 1001 items: only 1000 available"),
        ({"mode": "stratified", "n": 1001, "key": "lang"}, "cannot select 1001 items"),
        ({"mode": "sample"}, "needs a sample size"),
        ({"mode": "sample", "n": -1}, "needs a sample size"),
        ({"mode": "stratified", "n": 10, "key": "colour"}, "unknown metadata key 'colour'"),
        ({"mode": "stratified", "n": 10}, "needs a metadata key"),
        ({"mode": "everything"}, "unknown selection mode 'everything'"),
    ],
)
def test_bad_selection_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_items(ITEMS, seed=0, **kwargs)


# plan_reassignment


def test_reassignment_never_gives_a_reviewer_an_item_they_already_have():
    pending = [(item, "ana") for item in range(30)]
    taken = {(item, "ana") for item in range(30)} | {(item, "ben") for item in range(0, 30, 2)}

    moves = plan_reassignment(pending, to_reviewers=["ben", "cho", "dev"], taken=taken, seed=1)

    assert [(item, src) for item, src, _ in moves] == pending
    assert all((item, dst) not in taken for item, _, dst in moves)
    assert Counter(dst for *_, dst in moves) == {"ben": 10, "cho": 10, "dev": 10}


def test_reassignment_balances_with_existing_load():
    moves = plan_reassignment(
        [(item, "ana") for item in range(12)],
        to_reviewers=["ben", "cho", "dev"],
        taken=set(),
        seed=1,
        existing_load={"ben": 6, "cho": 3},
    )

    assert Counter(dst for *_, dst in moves) == {"ben": 1, "cho": 4, "dev": 7}


def test_reassignment_sends_copies_of_one_item_to_different_reviewers():
    moves = plan_reassignment(
        [("x", "ana"), ("x", "ben")], to_reviewers=["ana", "ben", "cho", "dev"], taken=set(), seed=0
    )

    assert {dst for *_, dst in moves} == {"cho", "dev"}


def test_reassignment_names_the_item_when_impossible():
    with pytest.raises(ValueError, match="cannot reassign item 'x' from 'ben'"):
        plan_reassignment(
            [("y", "ana"), ("x", "ben")],
            to_reviewers=["ben", "cho"],
            taken={("x", "cho")},
            seed=0,
        )


def test_reassignment_is_reproducible_from_the_seed():
    pending = [(item, "ana") for item in range(40)]
    args = {"to_reviewers": ["ben", "cho", "dev"], "taken": set()}

    first = plan_reassignment(pending, seed=3, **args)

    assert first == plan_reassignment(pending, seed=3, **args)
    assert first != plan_reassignment(pending, seed=4, **args)


@settings(deadline=None)
@given(
    n_items=st.integers(1, 60),
    n_reviewers=st.integers(2, 8),
    data=st.data(),
    seed=st.integers(0, 2**32),
)
def test_reassignment_properties(n_items, n_reviewers, data, seed):
    reviewers = [f"r{i}" for i in range(n_reviewers)]
    k = data.draw(st.integers(1, n_reviewers - 1), label="k")
    plan = plan_assignments(range(n_items), reviewers, k=k, seed=seed)
    leaving = reviewers[0]
    pending = [(a.item_id, a.reviewer) for a in plan if a.reviewer == leaving]
    taken = {(a.item_id, a.reviewer) for a in plan}
    staying = reviewers[1:]
    load = Counter(a.reviewer for a in plan if a.reviewer != leaving)

    moves = plan_reassignment(
        pending, to_reviewers=staying, taken=taken, seed=seed, existing_load=load
    )

    assert [(item, src) for item, src, _ in moves] == pending
    after = taken - set(pending) | {(item, dst) for item, _, dst in moves}
    assert len(after) == len(taken)  # nobody got an item twice
    per_item = Counter(item for item, _ in after)
    assert set(per_item.values()) == {k}
    load.update(dst for *_, dst in moves)
    if k == 1:  # no reviewer is excluded from any item, so the loads must come out level
        assert max(load[r] for r in staying) - min(load[r] for r in staying) <= 1
