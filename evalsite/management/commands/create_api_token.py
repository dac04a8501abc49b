"""python manage.py create_api_token EMAIL [--name N]; prints the token as its last line."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from evalsite import tokens


class Command(BaseCommand):
    help = (
        "Create a personal API token for the account with this email (it acts with that "
        "account's roles). Prints the token as the last line; it is not stored and cannot be "
        "shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="The account's email address.")
        parser.add_argument(
            "--name", default="", help='What the token is for (default "API token").'
        )

    def handle(self, *args, email: str, name: str, **options):
        user = get_user_model().objects.filter(email__iexact=email).order_by("pk").first()
        if user is None:
            raise CommandError(f"No account with the email {email!r}.")
        if not user.is_active:
            raise CommandError(f"The account {email!r} is inactive: its token would not work.")
        try:
            token, raw = tokens.create_api_token(user=user, name=name)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"Created API token {token.name!r} for {user.email}. It is shown once:")
        self.stdout.write(raw)
