"""Reviews: rubrics, campaigns, batches, assignments, judgments, reports and the audit trail."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviews.querysets import AssignmentQuerySet, CampaignQuerySet


def new_token() -> str:
    # 128 random bits, URL-safe: assignments are addressed by these, never by sequential ids.
    return secrets.token_urlsafe(16)


def new_random_key() -> int:
    return secrets.randbelow(2**31)


class Rubric(models.Model):
    """A named list of criteria (the design's rubric JSON); ``version`` grows on every change."""

    name = models.CharField(max_length=200, unique=True)
    criteria = models.JSONField(default=list, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_json(self) -> dict:
        return {"name": self.name, "criteria": self.criteria}


class Campaign(models.Model):
    """Baseline vs candidate on one dataset, graded with one rubric by a roster of reviewers."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class Mode(models.TextChoices):
        PUSH = "push", "Leads assign batches"
        PULL = "pull", "Reviewers pull the next item"

    name = models.CharField(max_length=200)
    # What reviewers see as the campaign's name (masked as well); `name` is for leads and
    # analysts and often names the systems ("Mini vs Llama").
    reviewer_title = models.CharField(max_length=200, blank=True)
    slug = models.SlugField(max_length=200, unique=True)
    # How reviewers' URLs name the campaign: the slug may carry the systems' names.
    public_id = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="+")
    baseline = models.ForeignKey("datasets.System", on_delete=models.PROTECT, related_name="+")
    candidate = models.ForeignKey("datasets.System", on_delete=models.PROTECT, related_name="+")
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="campaigns")
    overlap = models.PositiveSmallIntegerField(default=1)
    margin = models.FloatField(default=0.05)
    decision_threshold = models.FloatField(default=0.95)
    instructions = models.TextField(blank=True)
    instructions_version = models.PositiveIntegerField(default=1)
    mask_patterns = models.JSONField(default=list, blank=True)
    require_rationale = models.BooleanField(default=False)
    seed = models.BigIntegerField(default=0)
    # Operational gates the decision checks beside quality, e.g. [{"measure": "latency_ms",
    # "statistic": "p90", "op": "<=", "limit": 1500}] (reviews/reports/gates.py).
    operational_gates = models.JSONField(default=list, blank=True)
    # An item metadata key (e.g. "region"): a verdict per value, the overall one the strictest.
    segment_key = models.CharField(max_length=100, blank=True)
    mode = models.CharField(max_length=10, choices=Mode, default=Mode.PUSH)
    status = models.CharField(max_length=10, choices=Status, default=Status.ACTIVE)
    roster = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # Reviewer quality (issue #16): the share of each queue that is known-answer (gold) items,
    # the share of answered items shown again later with the sides swapped, and qualification:
    # the first `qualify_items` of a queue are gold, and a reviewer whose gold accuracy falls
    # below `min_accuracy` is paused until a lead reinstates them.
    gold_rate = models.FloatField(default=0.05, db_default=0.05)
    repeat_rate = models.FloatField(default=0.0, db_default=0.0)
    qualify_items = models.PositiveSmallIntegerField(default=0, db_default=0)
    min_accuracy = models.FloatField(null=True, blank=True)
    # How many of its items are gold (set at creation): pull mode skips the gold reads without.
    gold_items = models.PositiveIntegerField(default=0, db_default=0)
    # The campaign items' metadata keys, their responses' and whether the SQL export writes their
    # values exactly, {"keys": [...], "response_keys": [...], "exact": bool}: worked out on the
    # first export (reviews.exports.sql), as imported items and responses never change.
    export_metadata = models.JSONField(null=True, blank=True, editable=False)
    # Pull mode: a claimed slot not answered within this many minutes goes back to the pool.
    claim_timeout_minutes = models.PositiveIntegerField(default=30)
    # Judgments submitted since the last aggregation was queued (reviews.grading.count_judgments).
    judgments_since_report = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Optional: where to POST the decision when a report completes (reviews.api.webhooks). The
    # secret is kept as given: signing needs it, so it cannot be hashed like a password.
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("manage_campaigns", "Can create campaigns, rubrics and batches"),
            ("view_reports", "Can read campaign reports"),
            ("export_judgments", "Can export labelled data"),
            ("grade", "Can grade assigned items"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(baseline=models.F("candidate")), name="baseline_is_not_candidate"
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="overlap_at_least_one"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def accepts_judgments(self) -> bool:
        return self.status == self.Status.ACTIVE


class CampaignItem(models.Model):
    """An item in a campaign (it has responses from both systems): the unit that gets k slots."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="campaign_items")
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="+")
    baseline_response = models.ForeignKey(
        "datasets.Response", on_delete=models.CASCADE, related_name="+"
    )
    candidate_response = models.ForeignKey(
        "datasets.Response", on_delete=models.CASCADE, related_name="+"
    )
    # Reviewers holding a slot on this item; never above the campaign's overlap (pull mode).
    slots_taken = models.PositiveSmallIntegerField(default=0)
    # A known-answer item: mixed into queues to check reviewers, never counted in the figures
    # and never planned or pulled as live work.
    is_gold = models.BooleanField(default=False, db_default=False)
    # Pull mode walks a campaign's open items in this stored random order (reviews.grading.pull):
    # an index range scan from a random point, not a shuffle of the pool on every claim.
    random_key = models.IntegerField(default=new_random_key)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "item"], name="unique_campaign_item")
        ]
        indexes = [models.Index(fields=["campaign", "slots_taken", "random_key"])]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.item_id}"


class Batch(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200, blank=True)
    due_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="unique_batch_number")
        ]

    def __str__(self) -> str:
        return self.name or f"Batch {self.number}"


class Assignment(models.Model):
    """One reviewer × one campaign item, with its blind placement and queue position."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        # A pull-mode claim not answered within the campaign's claim timeout: its slot went back.
        EXPIRED = "expired", "Expired"

    class Source(models.TextChoices):
        GRADING = "grading", "Graded in evalsite"
        IMPORTED = "imported", "Imported"

    class Kind(models.TextChoices):
        LIVE = "live", "Live item"
        GOLD = "gold", "Known-answer item"
        REPEAT = "repeat", "Repeat with the sides swapped"

    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments"
    )
    campaign_item = models.ForeignKey(
        CampaignItem, on_delete=models.CASCADE, related_name="assignments"
    )
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    candidate_left = models.BooleanField()
    position = models.PositiveIntegerField(default=0)
    rubric_version = models.PositiveIntegerField(default=1)
    instructions_version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    source = models.CharField(max_length=10, choices=Source, default=Source.GRADING)
    skip_reason = models.CharField(max_length=40, blank=True)
    # Never shown to the reviewer: gold and repeat assignments look like any other.
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.LIVE, db_default="live")
    flagged = models.BooleanField(default=False)
    flag_note = models.TextField(blank=True)
    # When the item was last flagged (the flags-and-skips CSV); None for flags raised before.
    flagged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When a pull-mode claim took the slot (None for assigned batches, which never expire).
    claimed_at = models.DateTimeField(null=True, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["reviewer", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "item", "reviewer"],
                condition=~Q(kind="repeat"),
                name="one_assignment_per_reviewer_item",
            ),
            # An answered item comes back once, sides swapped (reviews.campaigns.quality_mix).
            models.UniqueConstraint(
                fields=["campaign", "item", "reviewer"],
                condition=Q(kind="repeat"),
                name="one_repeat_per_reviewer_item",
            ),
        ]
        indexes = [
            # The reviewer's next item in a campaign is the first entry in this order.
            models.Index(fields=["reviewer", "campaign", "status", "position", "id"]),
            models.Index(fields=["campaign", "status"]),
            # Pull-mode claims still pending, for the expiry check each claim makes.
            models.Index(
                fields=["campaign", "claimed_at"],
                condition=Q(status="pending", claimed_at__isnull=False),
                name="pending_claims",
            ),
        ]

    def __str__(self) -> str:
        return self.token


class Judgment(models.Model):
    """A reviewer's verdict, stored de-blinded. Revisions are new rows; one is current."""

    class Preference(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        BASELINE = "baseline", "Baseline"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both bad"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="judgments")
    # Denormalised from the assignment so aggregation and export read one table.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="judgments")
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judgments"
    )
    candidate_left = models.BooleanField()
    preference = models.CharField(max_length=10, choices=Preference)
    # {"criterion": {"baseline": v, "candidate": v}} per response, {"criterion": {"pair": v}}
    # per pair, oriented to the candidate.
    scores = models.JSONField(default=dict, blank=True)
    rationale = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    duration_seconds = models.FloatField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    source = models.CharField(
        max_length=10, choices=Assignment.Source, default=Assignment.Source.GRADING
    )
    # False for imported judgments whose file did not say which system was shown on the left:
    # candidate_left is then a placeholder, kept out of the position-bias check.
    # A database default too, so rows written in bulk SQL (benchmarks, faults) need not name it.
    placement_known = models.BooleanField(default=True, db_default=True)
    # The form's one-time key: a retried or doubled POST carries the same one.
    submission_key = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(is_current=True),
                name="one_current_judgment_per_assignment",
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "is_current"]),
            # The export streams a campaign's current judgments in this order (no sort).
            models.Index(
                fields=["campaign", "id"], condition=Q(is_current=True), name="current_judgments"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.preference} (revision {self.revision})"


class Report(models.Model):
    """An aggregation run: the UI's source of truth for its status and the figures."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="reports")
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    # Identifies the judgments the figures were computed from (count and last id).
    state_key = models.CharField(max_length=100, blank=True)
    n_judgments = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "state_key"],
                condition=Q(status="done"),
                name="one_done_report_per_state",
            )
        ]

    def __str__(self) -> str:
        return f"Report {self.pk} ({self.status})"


class ReviewerPause(models.Model):
    """A reviewer stopped from grading a campaign after failing its gold check; a lead may
    reinstate them (the row stays, so the check does not pause them again)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pauses")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    n_gold = models.PositiveIntegerField(default=0)
    n_correct = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    reinstated_at = models.DateTimeField(null=True, blank=True)
    reinstated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["campaign", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "reviewer"], name="one_pause_per_reviewer")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer_id} paused in {self.campaign_id}"

    @property
    def active(self) -> bool:
        return self.reinstated_at is None


class Adjudication(models.Model):
    """A lead's final label for an item reviewers disagreed on: the report's truth for it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="adjudications")
    campaign_item = models.OneToOneField(
        CampaignItem, on_delete=models.CASCADE, related_name="adjudication"
    )
    label = models.CharField(max_length=10, choices=Judgment.Preference)
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "campaign_item"]

    def __str__(self) -> str:
        return f"{self.campaign_item_id}: {self.label}"


class ExportLog(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=20)
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.campaign_id}: {self.row_count} rows"


class AuditEvent(models.Model):
    """Who created, changed, reassigned, exported or unblinded what, and when."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    verb = models.CharField(max_length=40)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE)
    target = models.CharField(max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.verb} {self.target}"


class WebhookDelivery(models.Model):
    """One webhook POST of a completed report's decision, with every attempt's outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="webhooks")
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="webhooks")
    event = models.CharField(max_length=40)
    url = models.URLField(max_length=500)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A redelivered task finds the row it made and does not notify twice.
            models.UniqueConstraint(fields=["report"], name="one_webhook_per_report")
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status})"
