"""Pure planning of who reviews what: item selection, k-fold overlap, left/right sides, queue order.

No Django here: services persist the plan. Every function is reproducible from its seed.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

SelectionMode = Literal["all", "sample", "stratified"]

# Separate random streams per purpose, so that selecting with a campaign's seed and then planning
# with the same seed do not reuse the same random numbers.
_SELECT, _PLAN, _REASSIGN = 1, 2, 3


@dataclass(frozen=True, slots=True)
class PlannedAssignment:
    """One reviewer × item assignment: side of the candidate, place in the queue, batch."""

    item_id: Hashable
    reviewer: Hashable
    candidate_left: bool
    position: int
    batch_index: int


def select_items(
    items: Sequence[tuple[Hashable, Mapping[str, Any] | None]],
    *,
    mode: SelectionMode,
    n: int | None = None,
    key: str | None = None,
    seed: int,
) -> list[Hashable]:
    """Return chosen item ids in input order: all, a uniform sample of n, or n stratified by `key`.

    Stratified: proportional allocation (largest remainder), at least one per stratum when n allows.
    """
    ids = [item_id for item_id, _ in items]
    _check_unique(ids, "item id")
    if mode == "all":
        return ids
    if mode not in ("sample", "stratified"):
        raise ValueError(f"unknown selection mode {mode!r}: use 'all', 'sample' or 'stratified'")
    if n is None or n < 0:
        raise ValueError(f"mode {mode!r} needs a sample size n >= 0, got {n!r}")
    if n > len(ids):
        raise ValueError(f"cannot select {n} items: only {len(ids)} available")
    rng = _rng(seed, _SELECT)
    if mode == "sample":
        chosen = rng.choice(len(ids), size=n, replace=False).tolist()
        return [ids[i] for i in sorted(chosen)]

    if not key:
        raise ValueError("stratified selection needs a metadata key")
    strata: dict[Hashable, list[int]] = {}
    key_seen = False
    for index, (_, metadata) in enumerate(items):
        metadata = metadata or {}
        key_seen = key_seen or key in metadata
        # Items without the key form one stratum of their own (together with explicit nulls).
        strata.setdefault(_stratum_label(metadata.get(key)), []).append(index)
    if not key_seen:
        raise ValueError(f"unknown metadata key {key!r}: no item has it")
    groups = list(strata.values())
    chosen: list[int] = []
    for group, count in zip(
        groups, _allocate_strata(n, [len(g) for g in groups], rng), strict=True
    ):
        chosen.extend(group[i] for i in rng.choice(len(group), size=count, replace=False).tolist())
    return [ids[i] for i in sorted(chosen)]


def _allocate_strata(n: int, sizes: Sequence[int], rng: np.random.Generator) -> list[int]:
    """Split n over strata of `sizes` (sum >= n) proportionally by largest remainder, with at least
    one per non-empty stratum when n >= their number; ties are broken by `rng`."""
    total = sum(sizes)
    if n > total:
        raise ValueError(f"cannot allocate {n} over strata holding {total}")
    if total == 0:
        return [0] * len(sizes)
    # Integer arithmetic throughout: the quota of stratum i is n * sizes[i] / total.
    alloc = [n * size // total for size in sizes]
    nonempty = sum(1 for size in sizes if size)
    if n >= nonempty:
        alloc = [max(a, 1) if size else 0 for a, size in zip(alloc, sizes, strict=True)]
    tie = rng.permutation(len(sizes)).tolist()

    def excess(i: int) -> int:  # (allocated - quota) * total
        return alloc[i] * total - n * sizes[i]

    missing = n - sum(alloc)
    if missing > 0:
        # Remainders are each < 1 and sum to `missing`, so the largest ones get one more each and
        # every one of them is still below its quota, hence below its size.
        for i in sorted(range(len(sizes)), key=lambda i: (excess(i), tie[i]))[:missing]:
            alloc[i] += 1
    elif missing < 0:
        # Raising tiny strata to one overshot; take back from the most over-allocated strata that
        # keep at least one (several times from one big stratum if need be).
        heap = [(-excess(i), tie[i], i) for i in range(len(sizes)) if alloc[i] > 1]
        heapq.heapify(heap)
        for _ in range(-missing):
            _, t, i = heapq.heappop(heap)
            alloc[i] -= 1
            if alloc[i] > 1:
                heapq.heappush(heap, (-excess(i), t, i))
    return alloc


def plan_assignments(
    item_ids: Sequence[Hashable],
    reviewers: Sequence[Hashable],
    *,
    k: int,
    seed: int,
    batch_size: int | None = None,
    existing_load: Mapping[Hashable, int] | None = None,
    existing_positions: Mapping[Hashable, int] | None = None,
) -> list[PlannedAssignment]:
    """Give every item k distinct reviewers, loads level to within one (least loaded, counting
    `existing_load`, first), the candidate's side per reviewer and per item within one of half.

    Items are shuffled and cut into batches of `batch_size` (one batch if None); each batch is
    spread over all reviewers. Positions run from `existing_positions[reviewer]` (the first free
    position, default 0), batch by batch, shuffled within a batch. Ordered by reviewer, position.
    """
    items, revs = list(item_ids), list(reviewers)
    _check_unique(items, "item id")
    _check_unique(revs, "reviewer")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > len(revs):
        raise ValueError(
            f"k={k} distinct reviewers per item needs at least {k} reviewers, got {len(revs)}"
        )
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not items:
        return []
    rng = _rng(seed, _PLAN)
    n_items, n_revs = len(items), len(revs)
    load = np.array([int((existing_load or {}).get(r, 0)) for r in revs], dtype=np.int64)

    order = rng.permutation(n_items)
    size = batch_size or n_items
    rev_parts, item_parts, batch_parts = [], [], []
    for batch_index, start in enumerate(range(0, n_items, size)):
        batch = order[start : start + size]
        m = len(batch)
        # A reviewer can see an item once, so no reviewer takes more than m of this batch.
        targets = _water_fill(load, cap=m, total=m * k, rng=rng)
        load += targets
        # Lay reviewers' quotas end to end as m * k slots and deal slot j to item j mod m: a quota
        # of at most m consecutive slots never meets an item twice, and every item gets exactly k.
        shuffled = rng.permutation(n_revs)
        rev_parts.append(np.repeat(shuffled, targets[shuffled]))
        item_parts.append(batch[np.arange(m * k) % m])
        batch_parts.append(np.full(m * k, batch_index))
    rev = np.concatenate(rev_parts)
    item = np.concatenate(item_parts)
    batch_of = np.concatenate(batch_parts)

    left = _left_sides(rev, item, rng)

    # Queue: by batch, random within a batch; positions continue after the existing queue.
    queue = np.lexsort((rng.random(len(rev)), batch_of, rev))
    counts = np.bincount(rev, minlength=n_revs)
    first = np.cumsum(counts) - counts
    offset = np.array([int((existing_positions or {}).get(r, 0)) for r in revs], dtype=np.int64)
    sorted_rev = rev[queue]
    positions = np.arange(len(rev)) - first[sorted_rev] + offset[sorted_rev]
    return [
        PlannedAssignment(items[i], revs[r], bool(c), p, b)
        for i, r, c, p, b in zip(
            item[queue].tolist(),
            sorted_rev.tolist(),
            left[queue].tolist(),
            positions.tolist(),
            batch_of[queue].tolist(),
            strict=True,
        )
    ]


def plan_reassignment(
    pending: Sequence[tuple[Hashable, Hashable]],
    *,
    to_reviewers: Sequence[Hashable],
    taken: set[tuple[Hashable, Hashable]],
    seed: int,
    existing_load: Mapping[Hashable, int] | None = None,
) -> list[tuple[Hashable, Hashable, Hashable]]:
    """Move each pending (item, from_reviewer) to a reviewer of `to_reviewers` who does not hold the
    item (`taken` or earlier moves), least loaded first; ValueError naming the item if none can."""
    targets = list(to_reviewers)
    _check_unique(targets, "reviewer")
    if not pending:
        return []
    rng = _rng(seed, _REASSIGN)
    load = {r: int((existing_load or {}).get(r, 0)) for r in targets}
    tie = dict(zip(targets, rng.permutation(len(targets)).tolist(), strict=True))
    holders: dict[Hashable, set[Hashable]] = {}
    for item, reviewer in taken:
        holders.setdefault(item, set()).add(reviewer)
    for item, from_reviewer in pending:
        holders.setdefault(item, set()).add(from_reviewer)

    def eligible(item: Hashable) -> list[Hashable]:
        return [r for r in targets if r not in holders[item]]

    # Most constrained items first, so flexible ones fill in around them and the loads end level.
    # Feasibility does not depend on the order: copies of one item only compete with each other.
    noise = rng.random(len(pending)).tolist()
    order = sorted(range(len(pending)), key=lambda i: (len(eligible(pending[i][0])), noise[i]))
    moved: dict[int, Hashable] = {}
    for i in order:
        item, from_reviewer = pending[i]
        options = eligible(item)
        if not options:
            raise ValueError(
                f"cannot reassign item {item!r} from {from_reviewer!r}: "
                "every other reviewer already has it"
            )
        to = min(options, key=lambda r: (load[r], tie[r]))
        moved[i] = to
        holders[item].add(to)
        load[to] += 1
    return [(item, from_reviewer, moved[i]) for i, (item, from_reviewer) in enumerate(pending)]


def _water_fill(load: np.ndarray, *, cap: int, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split `total` units, at most `cap` each, so that load + share is as level as possible."""
    # Highest level h whose fill sum(clip(h - load, 0, cap)) still fits in total (k <= R makes
    # R * cap >= total, so the search range always holds it).
    lo, hi = int(load.min()), int(load.max()) + cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(np.maximum(mid - load, 0), cap).sum()) <= total:
            lo = mid
        else:
            hi = mid - 1
    share = np.minimum(np.maximum(lo - load, 0), cap)
    rest = total - int(share.sum())
    if rest:
        # Fewer units than reviewers sitting at level h with room: a random few of them go one up.
        room = np.flatnonzero((load + share == lo) & (share < cap))
        share[rng.choice(room, size=rest, replace=False)] += 1
    return share


def _left_sides(reviewer: np.ndarray, item: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mark edges reviewer[e]–item[e] (no repeats) so that, at every reviewer and every item, marked
    and unmarked edges differ in number by at most one."""
    # Pair up the edge ends at every vertex (one is left over at an odd-degree vertex). Pairs chain
    # the edges into paths and cycles, the pieces of an Euler circuit once odd vertices are joined
    # by dummy edges. Walking a chain, edges go reviewer->item and item->reviewer alternately (the
    # graph is bipartite), and at each paired vertex one edge arrives and the next leaves. So
    # "candidate left" = "walked from reviewer to item" balances every vertex to within its one
    # unpaired end. What remains is to walk each chain one consistent way: pointer jumping below.
    n_half = 2 * len(reviewer)
    half = np.arange(n_half)
    # Half-edge 2e is edge e's reviewer end, 2e + 1 its item end (items numbered after reviewers).
    vertex = np.empty(n_half, dtype=np.int64)
    vertex[0::2] = reviewer
    vertex[1::2] = item + (int(reviewer.max()) + 1)
    # Random pairing at every vertex, so the chains (hence the sides) are not predictable.
    order = rng.permutation(n_half)
    order = order[np.argsort(vertex[order], kind="stable")]
    at = vertex[order]
    first = np.r_[True, at[1:] != at[:-1]]
    rank = half - np.maximum.accumulate(np.where(first, half, 0))
    pairs = np.flatnonzero((rank % 2 == 0)[:-1] & (at[1:] == at[:-1]))
    mate = np.full(n_half, -1)
    mate[order[pairs]] = order[pairs + 1]
    mate[order[pairs + 1]] = order[pairs]

    # Entering an edge by half-edge h, one leaves by h ^ 1 and enters the next edge by its mate.
    # Each chain is walked twice over, once per direction, by mirrored half-edges (h and h ^ 1).
    succ = mate[half ^ 1]
    jump = np.where(succ < 0, half, succ)  # a path's last half-edge loops on itself
    low = half.copy()
    for _ in range(max(1, (n_half - 1).bit_length())):
        low = np.minimum(low, low[jump])
        jump = jump[jump]
    # Name each directed chain by its last half-edge (paths) or its smallest one (cycles); the two
    # directions get different names, and the smaller name picks the direction that is walked.
    name = np.where(succ[jump] < 0, jump, low)
    walked = name < name[half ^ 1]
    left = walked[0::2]
    chain = np.where(left, name[0::2], name[1::2])
    # Which way round a chain shows the candidate is a coin flip per chain.
    return left ^ rng.integers(0, 2, size=n_half).astype(bool)[chain]


def _rng(seed: int, purpose: int) -> np.random.Generator:
    seed = operator.index(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng([seed, purpose])


def _stratum_label(value: Any) -> Hashable:
    try:
        hash(value)
    except TypeError:  # lists or dicts from JSON metadata: group by their text
        return repr(value)
    return value


def _check_unique(values: Sequence[Hashable], what: str) -> None:
    seen: set[Hashable] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


_MIX = 4
# A repeat comes back at least this many items after the original, so that it is not answered
# from short-term memory of the other side.
REPEAT_MIN_GAP = 3


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One place in a reviewer's mixed queue: an item and what it is there for."""

    item_id: Hashable
    kind: Literal["live", "gold", "repeat"]


def mix_quality_items(
    live: Sequence[Hashable],
    *,
    gold: Sequence[Hashable],
    gold_rate: float,
    repeat_rate: float,
    qualify: int = 0,
    after_gold: bool = False,
    seed: int,
) -> list[QueueEntry]:
    """A reviewer's new queue: `live` items in their order, with gold items and flipped repeats
    mixed in at random places.

    The first `qualify` entries are gold (qualification). Then gold makes up about `gold_rate`
    of the queue (n live items get round(n * rate / (1 - rate)) gold), never two gold in a row
    (`after_gold`: the queue so far ends with one); about `repeat_rate` of the live items come back
    at least REPEAT_MIN_GAP places later. `gold` lists the reviewer's unused gold items; each is
    used at most once, so fewer gold appear when it runs short.
    """
    if not 0 <= gold_rate < 1 or not 0 <= repeat_rate <= 1:
        raise ValueError("rates must be between 0 and 1")
    rng = _rng(seed, _MIX)
    pool = [gold[i] for i in rng.permutation(len(gold)).tolist()]
    head = [QueueEntry(item, "gold") for item in pool[:qualify]]
    pool = pool[len(head) :]
    queue: list[QueueEntry] = [QueueEntry(item, "live") for item in live]
    # Repeats: originals from all but the last REPEAT_MIN_GAP live items, each put back at a
    # random place at least REPEAT_MIN_GAP after it.
    n_repeat = min(round(len(live) * repeat_rate), max(len(live) - REPEAT_MIN_GAP, 0))
    if n_repeat:
        originals = sorted(
            rng.choice(len(live) - REPEAT_MIN_GAP, size=n_repeat, replace=False).tolist()
        )
        for original in reversed(originals):  # later originals first: earlier indices stay put
            where = int(rng.integers(original + REPEAT_MIN_GAP, len(queue))) + 1
            queue.insert(where, QueueEntry(live[original], "repeat"))
    # Gold: distinct gaps between the non-gold entries (n + 1 of them), so no two touch.
    n_gold = round(len(live) * gold_rate / (1 - gold_rate)) if gold_rate else 0
    gaps = list(range(1 if head or after_gold else 0, len(queue) + 1))
    n_gold = min(n_gold, len(pool), len(gaps))
    chosen = sorted(rng.choice(gaps, size=n_gold, replace=False).tolist()) if n_gold else []
    for offset, gap in enumerate(chosen):
        queue.insert(gap + offset, QueueEntry(pool[offset], "gold"))
    return head + queue
