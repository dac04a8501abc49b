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

# Separate random streams per purpose, so that selecting with a campaign's seed and then planning with
# the same seed do not reuse the same random numbers.
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
    """Return the chosen item ids in input order: all, a uniform sample of n, or n stratified by `key`.

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
    chosen = []
    for group, count in zip(groups, _allocate_strata(n, [len(g) for g in groups], rng), strict=True):
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
    """Give every item k distinct reviewers, balancing load (with `existing_load`) to within one,
    the candidate's side per reviewer and per item to within one, in seeded shuffled queues.

    Items are shuffled and cut into batches of `batch_size` (one batch if None); each batch is spread
    over all reviewers. Positions run from `existing_positions[reviewer]` (the first free position, 0 if
    absent), batch by batch, shuffled within a batch. Result is ordered by reviewer, then position.
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
        # Lay reviewers' quotas end to end as m * k slots and deal slot j to item j mod m: a quota of
        # at most m consecutive slots never meets an item twice, and every item gets exactly k.
        shuffled = rng.permutation(n_revs)
        rev_parts.append(np.repeat(shuffled, targets[shuffled]))
        item_parts.append(batch[np.arange(m * k) % m])
        batch_parts.append(np.full(m * k, batch_index))
    rev = np.concatenate(rev_parts)
    item = np.concatenate(item_parts)
    batch_of = np.concatenate(batch_parts)

    # Reviewers are vertices 0..R-1 and items R..R+M-1 of one bipartite graph.
    left = _balanced_colouring(rev, item + n_revs, n_revs + n_items, rng)

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
        if int(np.clip(mid - load, 0, cap).sum()) <= total:
            lo = mid
        else:
            hi = mid - 1
    share = np.clip(lo - load, 0, cap)
    rest = total - int(share.sum())
    if rest:
        # Fewer units than reviewers sitting at level h with room: a random few of them go one up.
        room = np.flatnonzero((load + share == lo) & (share < cap))
        share[rng.choice(room, size=rest, replace=False)] += 1
    return share


def _balanced_colouring(
    u: np.ndarray, v: np.ndarray, n_vertices: int, rng: np.random.Generator
) -> np.ndarray:
    """Colour the edges (u[i], v[i]) of a bipartite graph so that at every vertex the two colours'
    counts differ by at most one."""
    # Join every odd-degree vertex to one extra vertex D; then all degrees are even and each
    # connected component has an Euler circuit. Colouring a circuit's edges alternately balances every
    # vertex it passes through: a pass enters and leaves by consecutive edges. A circuit's start is the
    # only vertex where its first and last edges might share a colour, which happens only on odd
    # circuits; starting at D makes that harmless, and components without D are bipartite, so even.
    n_edges = len(u)
    degree = np.bincount(u, minlength=n_vertices) + np.bincount(v, minlength=n_vertices)
    odd = np.flatnonzero(degree % 2)
    extra = n_vertices
    uu = np.concatenate([u, odd])
    vv = np.concatenate([v, np.full(len(odd), extra)])
    n_all = len(uu)

    # Adjacency in CSR form, in a random order so the circuits (hence the colours) are unpredictable.
    ends = np.concatenate([uu, vv])
    edge_ids = np.concatenate([np.arange(n_all), np.arange(n_all)])
    shuffle = rng.permutation(len(ends))
    ends, edge_ids = ends[shuffle], edge_ids[shuffle]
    by_vertex = np.argsort(ends, kind="stable")
    adjacency = edge_ids[by_vertex].tolist()
    bounds = np.searchsorted(ends[by_vertex], np.arange(n_vertices + 2)).tolist()
    pointer, stop = bounds[:-1], bounds[1:]
    other = (uu ^ vv).tolist()  # other endpoint of edge e seen from x: other[e] ^ x
    used = bytearray(n_all)
    colour = np.zeros(n_all, dtype=bool)
    flips = rng.integers(0, 2, size=n_vertices + 1).tolist()

    for start in [extra, *range(n_vertices)]:
        # Hierholzer's algorithm, iterative; edges come out as a closed trail, in reverse.
        circuit: list[int] = []
        stack, via = [start], [-1]
        while stack:
            x = stack[-1]
            p, end = pointer[x], stop[x]
            while p < end and used[adjacency[p]]:
                p += 1
            if p == end:
                pointer[x] = p
                stack.pop()
                e = via.pop()
                if e >= 0:
                    circuit.append(e)
            else:
                e = adjacency[p]
                pointer[x] = p + 1
                used[e] = 1
                stack.append(other[e] ^ x)
                via.append(e)
        if circuit:
            # Which colour means "left" is a coin flip per component, so patterns are not predictable.
            colour[circuit] = (np.arange(len(circuit)) & 1).astype(bool) ^ bool(flips[start])
    return colour[:n_edges]


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
