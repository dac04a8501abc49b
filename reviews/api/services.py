"""What the API does beyond one existing service call: each function composes the services the
pages and commands use (datasets.importing.jobs, reviews.campaigns.*), adding no rule of its own
besides doing it in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction

from datasets.importing import jobs as import_jobs
from datasets.importing.errors import ErrorList
from datasets.importing.file_checks import check_file
from datasets.importing.parsing import preview
from datasets.models import ImportJob
from reviews.campaigns import lookups, rubrics
from reviews.campaigns.services import create_campaign
from reviews.models import Campaign

if TYPE_CHECKING:
    from django.contrib.auth.models import User


MAX_REVIEWERS = 500


class Refused(ValidationError):
    """The request names something that does not exist or a file that cannot be read;
    ``messages`` say what, in the command line's words."""


def start_import(
    *, path: Path, filename: str, dataset_name: str, redact_pii: bool, user: User
) -> ImportJob:
    """Check the file's bytes and its first rows (the upload page's checks and preview), then
    store it as a job and queue it at once (the API's confirmation is the request itself).
    Refused, with ``FILE:LINE: message`` errors and nothing stored, when those checks fail."""
    name = dataset_name.strip()
    if not name or len(name) > 200:
        raise Refused("Give the dataset a name of 1 to 200 characters.")
    problems = ErrorList(filename)
    if check_file(path, problems) is None:
        raise Refused(problems.as_list())
    first_rows = preview(path, filename)
    if first_rows.errors:
        raise Refused(first_rows.errors)
    with path.open("rb") as handle:
        job = import_jobs.create_import_job(
            upload=File(handle, name=filename), dataset_name=name, redact_pii=redact_pii, user=user
        )
    import_jobs.confirm_import(job=job)
    return job


def create_campaign_from_spec(
    *,
    name: str,
    dataset: str,
    baseline: str,
    candidate: str,
    rubric: dict[str, Any] | None,
    overlap: int,
    margin: float,
    seed: int | None,
    actor: User,
) -> Campaign:
    """``create_campaign`` by names, as ``manage.py create_campaign`` takes them; the rubric
    (the rubric-file object, or the default rubric) is created in the same transaction, so a
    refused campaign leaves no rubric behind."""
    found = lookups.dataset_named(dataset)
    systems = [lookups.system_named(baseline), lookups.system_named(candidate)]
    with transaction.atomic():
        if rubric is None:
            chosen = rubrics.get_or_create_default_rubric(actor=actor)
        else:
            try:
                chosen = rubrics.import_rubric(data=rubric, actor=actor)
            except ValidationError as exc:
                raise Refused([f"rubric: {m}" for m in exc.messages]) from exc
        return create_campaign(
            name=name,
            dataset=found,
            baseline=systems[0],
            candidate=systems[1],
            rubric=chosen,
            overlap=overlap,
            margin=margin,
            seed=seed,
            actor=actor,
        )


def reviewers_by_email(emails: list[str]) -> list[User]:
    """The accounts with these emails, in order (``lookups.users_by_email``, as ``manage.py
    assign`` uses it), at most MAX_REVIEWERS of them."""
    wanted = list(dict.fromkeys(e.strip() for e in emails if e.strip()))
    if not wanted:
        raise Refused("reviewers: give at least one email address.")
    if len(wanted) > MAX_REVIEWERS:
        raise Refused(f"reviewers: at most {MAX_REVIEWERS} email addresses per request.")
    return lookups.users_by_email(wanted)
