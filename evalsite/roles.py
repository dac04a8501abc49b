"""Roles are the Django groups ``reviewer``, ``lead`` and ``analyst``; staff hold all three."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

REVIEWER = "reviewer"
LEAD = "lead"
ANALYST = "analyst"
ALL_ROLES = frozenset({REVIEWER, LEAD, ANALYST})
# Set by evalsite.auth_backends on the request's user: the role names, comma-separated.
ROLE_NAMES_ATTR = "_evalsite_role_names"


def roles_of(user) -> frozenset[str]:
    """The user's roles, read once per request and kept on the user object."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_evalsite_roles", None)
    if cached is None:
        loaded = getattr(user, ROLE_NAMES_ATTR, None)
        if user.is_staff or user.is_superuser:
            cached = ALL_ROLES
        elif loaded is not None:
            cached = frozenset(loaded.split(",")) & ALL_ROLES
        else:
            cached = frozenset(
                user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True)
            )
        user._evalsite_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def role_required(*roles: str) -> Callable:
    """Login first (302 to the login page), then any of ``roles`` (else 403)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied(f"This page is for the {' or '.join(roles)} role.")
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator
