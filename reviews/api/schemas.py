"""Request and response bodies (pydantic, through django-ninja): the OpenAPI schema is built
from these."""

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema


class ImportStarted(Schema):
    id: int
    status: str
    url: str = Field(description="GET it for the job's status, progress and errors.")


class ImportStatus(Schema):
    id: int
    dataset: str
    filename: str
    status: Literal["pending", "validating", "importing", "done", "failed"]
    progress: int = Field(description="Percent done, 0 to 100.")
    rows_done: int
    rows_total: int
    errors: list[str] = Field(description="FILE:LINE: message, as the command line prints them.")
    summary: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


class CampaignIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    dataset: str = Field(min_length=1, max_length=200)
    baseline: str = Field(min_length=1, max_length=200)
    candidate: str = Field(min_length=1, max_length=200)
    rubric: dict[str, Any] | None = Field(
        None, description='The rubric-file object ({"name", "criteria"}); default rubric if none.'
    )
    overlap: int = Field(1, ge=1, le=100)
    margin: float = Field(0.05, ge=0, lt=0.5)
    seed: int | None = Field(None, ge=0, lt=2**63)


class CampaignCreated(Schema):
    slug: str
    url: str


class Progress(Schema):
    items: int
    slots: int
    open_slots: int
    assigned: int
    done: int
    pending: int
    skipped: int
    percent: int


class CampaignOut(Schema):
    slug: str
    name: str
    status: str
    mode: str
    dataset: str
    baseline: str
    candidate: str
    rubric: str
    rubric_version: int
    overlap: int
    margin: float
    decision_threshold: float
    seed: int
    webhook: bool = Field(description="Whether a webhook URL is set (the secret is never shown).")
    created_at: datetime
    progress: Progress


class AssignIn(Schema):
    reviewers: list[str] = Field(min_length=1, max_length=500)
    batch_size: int | None = Field(None, ge=1)


class Assigned(Schema):
    batches: list[int]
    items: int
    assignments: int
    refilled: int
    left_open: int


class JudgmentsImported(Schema):
    rows: int
    created: int
    already_imported: int
    new_reviewers: int


class ReportQueued(Schema):
    id: int
    status: str
    url: str


class Decision(Schema):
    verdict: Literal["migrate", "do_not_migrate", "need_more_labels"]
    probability: float | None
    threshold: float
    reasons: list[str]
    report_at: datetime | None
