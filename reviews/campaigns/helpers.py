"""Helpers shared by the lead's service modules (rubrics, campaigns, batches, pull): reviewer
checks and seeds derived from the campaign seed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

from evalsite.roles import REVIEWER, has_role

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _user_or_none(user: User | None) -> User | None:
    return user if user is not None and user.is_authenticated else None


def _check_reviewers(users: Sequence[User]) -> None:
    not_reviewers = [u.email or u.username for u in users if not has_role(u, REVIEWER)]
    if not_reviewers:
        raise ValidationError(
            f"Not active reviewers: {', '.join(not_reviewers)}. "
            "Add them to the reviewer group first."
        )


def _derived_seed(seed: int, *parts: object) -> int:
    """A non-negative 63-bit seed for one purpose, reproducible from the campaign seed."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _least_used_side(*counters: Counter) -> bool | None:
    for counter in counters:
        if counter[True] != counter[False]:
            return counter[True] < counter[False]
    return None
