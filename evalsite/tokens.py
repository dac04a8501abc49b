"""Personal API tokens: create (the token is returned once), revoke, and find the user a
presented token belongs to.

Only the SHA-256 of a token is stored. A token is 256 random bits, so a fast hash is as safe as
a slow one here (nothing to brute-force), and a slow one (PBKDF2) would cost every API request
hundreds of milliseconds.
"""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evalsite.auth_backends import RolesModelBackend
from evalsite.models import ApiToken
from reviews.audit.events import record_audit

TOKEN_PREFIX = "evs_"  # noqa: S105 (a marker that tells tokens apart, not a secret)
# last_used_at is written at most this often per token: a pipeline polling every second should
# not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_token(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the token itself (never stored)."""
    name = (name or "").strip() or "API token"
    if len(name) > 100:
        raise ValidationError("A token's name has at most 100 characters.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=raw[:12], key_hash=hash_token(raw)
        )
        record_audit(user, "api_token.created", target=f"api_token:{token.prefix}", name=name)
    return token, raw


def revoke_api_token(*, user: AbstractBaseUser, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False when it is not theirs or already revoked."""
    with transaction.atomic():
        token = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).first()
        revoked = token is not None and bool(
            ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
        )
        if revoked:
            record_audit(
                user, "api_token.revoked", target=f"api_token:{token.prefix}", name=token.name
            )
    return revoked


def tokens_of(user: AbstractBaseUser):
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def user_for_token(raw: str) -> AbstractBaseUser | None:
    """The active user a live token belongs to, with their roles loaded; None otherwise."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    row = (
        ApiToken.objects.filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .values_list("pk", "user_id", "last_used_at")
        .first()
    )
    if row is None:
        return None
    pk, user_id, last_used = row
    # One query for the user and their roles, as for a logged-in page (evalsite.auth_backends).
    user = RolesModelBackend().get_user(user_id)
    if user is None:
        return None
    now = timezone.now()
    if last_used is None or last_used < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    return user
