from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is closed unless ALLOW_SIGNUPS is set: leads or the admin create accounts."""

    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUPS

    def get_login_redirect_url(self, request) -> str:
        return reverse("home")
