"""Authentication backends that load the user's roles with the user, in one query.

Every page checks roles (evalsite.roles), so reading the groups in a second query cost every
request a database round trip; the grading page is measured in milliseconds (issue #5).
"""

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q, StringAgg, Value

from .roles import ALL_ROLES, ROLE_NAMES_ATTR


class RolesWithUserMixin:
    def get_user(self, user_id):
        users = get_user_model()._default_manager.annotate(
            **{
                ROLE_NAMES_ATTR: StringAgg(
                    "groups__name",
                    Value(","),
                    filter=Q(groups__name__in=ALL_ROLES),
                    default="",
                )
            }
        )
        try:
            user = users.get(pk=user_id)
        except get_user_model().DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None


class RolesModelBackend(RolesWithUserMixin, ModelBackend):
    pass


class RolesAllauthBackend(RolesWithUserMixin, AllauthBackend):
    pass
