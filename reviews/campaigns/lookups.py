"""Datasets, systems and reviewers as people name them (the command line and the HTTP API):
one lookup each, refusing with a message that names what is missing and, where short, what
exists. ValidationError, so each interface words the refusal its own way (CommandError, 400)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q

from datasets.models import Dataset, System

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def dataset_named(name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        known = ", ".join(Dataset.objects.values_list("name", flat=True)[:20]) or "none"
        raise ValidationError(f"No dataset named {name!r} (known: {known}).")
    return dataset


def system_named(name: str) -> System:
    system = System.objects.filter(name=name).first()
    if system is None:
        known = ", ".join(System.objects.values_list("name", flat=True)[:20]) or "none"
        raise ValidationError(f"No system named {name!r} (known: {known}).")
    return system


def users_by_email(emails: list[str]) -> list[User]:
    """The accounts with these emails (case-insensitive, the oldest where two share one), in the
    order given, in one query; refused naming every email with no account."""
    query = Q()
    for email in emails:
        query |= Q(email__iexact=email)
    by_email: dict[str, User] = {}
    for user in get_user_model().objects.filter(query).order_by("pk"):
        by_email.setdefault(user.email.lower(), user)
    missing = [e for e in emails if e.lower() not in by_email]
    if missing:
        raise ValidationError(f"No account with the email: {', '.join(missing)}.")
    return [by_email[e.lower()] for e in emails]
