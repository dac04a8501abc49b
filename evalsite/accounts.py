from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is closed unless ALLOW_SIGNUPS is set: leads or the admin create accounts."""

    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUPS

    def get_login_redirect_url(self, request) -> str:
        return reverse("home")


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """The organisation's sign-in opens existing accounts only, unless ALLOW_SIGNUPS is set."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUPS

    def list_apps(self, request, provider=None, client_id=None):
        # Configured from the environment only (OIDC_*): with none, no query on every login page.
        if not settings.SOCIALACCOUNT_PROVIDERS:
            return []
        return super().list_apps(request, provider=provider, client_id=client_id)
