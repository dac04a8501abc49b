"""What an evaluation lead does: rubrics, campaigns, batches, assignment, pull, status, progress.

Plain keyword-only functions. Each owns its transaction, raises ValidationError for a broken rule
and writes an AuditEvent for what it created or changed.

The code lives in reviews.rubrics, reviews.campaigns, reviews.batches, reviews.pull and
reviews.progress; this module re-exports their public names so callers can keep importing
`services`.
"""

from .batches import (
    AssignResult,
    add_slots,
    create_batches_and_assign,
    reassign,
    unassign,
)
from .campaigns import (
    RESERVED_SLUGS,
    STATUS_TRANSITIONS,
    count_campaign_items,
    create_campaign,
    reviewer_notice,
    set_status,
    update_campaign,
)
from .progress import (
    CampaignProgress,
    Median,
    ProgressRow,
    campaign_progress,
)
from .pull import (
    PULL_ATTEMPTS,
    pull_next_assignment,
)
from .rubrics import (
    BINDING_KEYS,
    CRITERION_KEYS,
    CRITERION_NAME,
    DEFAULT_CRITERIA,
    DEFAULT_RUBRIC_NAME,
    DIRECTIONS,
    KINDS,
    MAX_CRITERIA,
    PERS,
    SCALE_SPAN_LIMIT,
    copy_rubric,
    create_rubric,
    get_or_create_default_rubric,
    import_rubric,
    invalidating_changes,
    rubric_has_judgments,
    update_rubric,
    validate_rubric_json,
)

__all__ = [
    "BINDING_KEYS",
    "CRITERION_KEYS",
    "CRITERION_NAME",
    "DEFAULT_CRITERIA",
    "DEFAULT_RUBRIC_NAME",
    "DIRECTIONS",
    "KINDS",
    "MAX_CRITERIA",
    "PERS",
    "PULL_ATTEMPTS",
    "RESERVED_SLUGS",
    "SCALE_SPAN_LIMIT",
    "STATUS_TRANSITIONS",
    "AssignResult",
    "CampaignProgress",
    "Median",
    "ProgressRow",
    "add_slots",
    "campaign_progress",
    "copy_rubric",
    "count_campaign_items",
    "create_batches_and_assign",
    "create_campaign",
    "create_rubric",
    "get_or_create_default_rubric",
    "import_rubric",
    "invalidating_changes",
    "pull_next_assignment",
    "reassign",
    "reviewer_notice",
    "rubric_has_judgments",
    "set_status",
    "unassign",
    "update_campaign",
    "update_rubric",
    "validate_rubric_json",
]
