"""Datasets: the systems being compared, the items they answered and their responses."""

from django.conf import settings
from django.db import models


class System(models.Model):
    """A model or pipeline whose answers are compared (e.g. "gpt-4", "gpt-4o")."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Per-system summary of response metrics and numeric metadata, and the item metadata keys and
    # values (dataset_stats.summarise_dataset); refreshed after imports and by the metrics job.
    stats = models.JSONField(default=dict, blank=True)
    stats_updated_at = models.DateTimeField(null=True, blank=True)
    # Items held, recounted after each import and by the metrics job: the dataset list shows it
    # without counting (a COUNT per dataset took 20 s beside a 535,000-item dataset).
    n_items = models.PositiveIntegerField(default=0)
    # Files whose every row is stored here, by content hash and redaction setting: {key: the
    # import's rows, form and systems}. Stored rows are never changed or removed by an import,
    # so importing such a file again is answered from this (datasets.importing.services).
    imported_files = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_datasets", "Can import and manage datasets")]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """One ticket: the prompt every system answered, identified by the file's ``item_id``."""

    # No index of its own: unique_item_per_dataset (dataset, external_id) serves it, and every
    # extra index slows imports.
    dataset = models.ForeignKey(
        Dataset, on_delete=models.CASCADE, related_name="items", db_index=False
    )
    external_id = models.CharField(max_length=200)
    prompt = models.TextField()
    context = models.TextField(blank=True)
    reference = models.TextField(blank=True)
    # A judge's verdict for the pair, as written in the file: a system name, "tie" or "both_bad".
    auto_preference = models.CharField(max_length=200, blank=True)
    # A known-answer item: the expected preference as written in the file ("baseline",
    # "candidate", "tie", "both_bad" or a system's name), and why. Empty for ordinary items.
    # db_default too, so writers that list their columns need not name these.
    gold = models.CharField(max_length=200, blank=True, default="", db_default="")
    gold_note = models.TextField(blank=True, default="", db_default="")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "external_id"], name="unique_item_per_dataset"
            )
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_gold(self) -> bool:
        return bool(self.gold)


class Response(models.Model):
    """One system's answer to one item."""

    # Served by one_response_per_system (item, system) and the (system, item) index.
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="responses", db_index=False
    )
    system = models.ForeignKey(
        System, on_delete=models.PROTECT, related_name="responses", db_index=False
    )
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    # Automatic metrics (characters, words, urls, ...); null until the metrics job has run.
    metrics = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["item", "system"]
        constraints = [
            models.UniqueConstraint(fields=["item", "system"], name="one_response_per_system")
        ]
        indexes = [models.Index(fields=["system", "item"])]

    def __str__(self) -> str:
        return f"{self.item_id}/{self.system_id}"


class ImportJob(models.Model):
    """A pairs-file import: the UI's source of truth for its status, progress and outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        VALIDATING = "validating", "Validating"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    dataset_name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL)
    file = models.FileField(upload_to="imports/%Y/%m/", blank=True)
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, blank=True)
    redact_pii = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the lead confirms the preview and the import is queued.
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} → {self.dataset_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}

    @property
    def state_label(self) -> str:
        """The status as the list of imports says it: a pending job either awaits the lead's
        confirmation or, confirmed, a worker."""
        if self.status == self.Status.PENDING:
            return "Waiting for a worker" if self.queued_at else "Awaiting confirmation"
        return self.get_status_display()

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(100 * self.rows_done / self.rows_total))
