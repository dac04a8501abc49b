"""Leads invite people: an account with the role, no usable password, and an email carrying
allauth's password-set link (its reset-from-key flow, so the link expires like any reset link)."""

from dataclasses import dataclass, field
from functools import partial

from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from evalsite.roles import ALL_ROLES, REVIEWER
from reviews.audit.events import record_audit
from reviews.models import Campaign


@dataclass
class Invitations:
    invited: list[str] = field(default_factory=list)  # new accounts, or not yet set up: emailed
    existing: list[str] = field(default_factory=list)  # already set up: role added, no email


def parse_emails(text: str) -> list[str]:
    """Addresses separated by commas, spaces or lines, lower-cased, each checked; duplicates go."""
    emails = []
    for raw in text.replace(",", " ").split():
        email = raw.strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(f"“{raw}” is not an email address.") from None
        if email not in emails:
            emails.append(email)
    if not emails:
        raise ValidationError("Enter at least one email address.")
    return emails


def invite_people(
    *, emails: list[str], role: str, actor, base_url: str, campaign: Campaign | None = None
) -> Invitations:
    """Give each address an account with `role` (and a place on the campaign's roster); email
    the ones who have no password yet a link to set one. Mail goes after commit."""
    if role not in ALL_ROLES:
        raise ValidationError(f"Unknown role {role!r}.")
    users = get_user_model().objects
    result = Invitations()
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=role)
        for email in emails:
            user = users.filter(Q(email__iexact=email) | Q(username__iexact=email)).first()
            if user is None:
                user = users.create_user(username=email, email=email)  # unusable password
            EmailAddress.objects.get_or_create(
                user=user, email=email, defaults={"primary": True, "verified": True}
            )
            user.groups.add(group)
            if campaign is not None and role == REVIEWER:
                campaign.roster.add(user)
            if user.has_usable_password():
                result.existing.append(email)
            else:
                result.invited.append(email)
                transaction.on_commit(partial(_send_invitation, user, actor, base_url))
        record_audit(
            actor,
            "people.invited",
            campaign=campaign,
            target=", ".join(emails)[:255],
            role=role,
            emailed=len(result.invited),
        )
    return result


def invitation_link(user, base_url: str) -> str:
    """allauth's password-reset-from-key URL for `user` (valid PASSWORD_RESET_TIMEOUT)."""
    path = reverse(
        "account_reset_password_from_key",
        kwargs={
            "uidb36": user_pk_to_url_str(user),
            "key": default_token_generator.make_token(user),
        },
    )
    return base_url.rstrip("/") + path


def _send_invitation(user, actor, base_url: str) -> None:
    # No campaign name: a lead's name for it may name the systems a reviewer must not know.
    inviter = (actor.email or actor.username) if actor else "An evaluation lead"
    send_mail(
        "You are invited to evalsite",
        f"{inviter} invited you to evalsite.\n\n"
        f"Choose a password to sign in:\n{invitation_link(user, base_url)}\n\n"
        "The link works once and expires in a few days; ask for a new one if it has.\n",
        None,
        [user.email],
    )
