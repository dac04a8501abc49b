"""Every datasets object a user reaches goes through here (leads manage all datasets)."""

from django.shortcuts import get_object_or_404

from datasets.models import Dataset, ImportJob


def datasets_for_lead(user):
    return Dataset.objects.all()


def dataset_for_lead(user, slug: str) -> Dataset:
    return get_object_or_404(datasets_for_lead(user), slug=slug)


def import_jobs_for_lead(user):
    return ImportJob.objects.select_related("dataset", "created_by")


def import_job_for_lead(user, pk: int) -> ImportJob:
    return get_object_or_404(import_jobs_for_lead(user), pk=pk)
