"""Bearer-token auth: a token acts as its user, with the same roles as the pages.

A wrong or revoked token is a 401, a user without the endpoint's role a 403, both checked
before the request's body is read. A session cookie is never enough: an API request is
authenticated by its token alone (no CSRF exposure).
"""

from ninja.security import HttpBearer

from evalsite import tokens
from evalsite.roles import has_role, roles_of
from reviews.api.errors import ApiError


class TokenAuth(HttpBearer):
    def __init__(self, *roles: str) -> None:
        super().__init__()
        self.roles = roles

    def authenticate(self, request, token: str):
        user = tokens.user_for_token(token)
        if user is None:
            raise ApiError(401, "The token is not valid (wrong, revoked, or its account inactive).")
        request.user = user
        if self.roles and not has_role(user, *self.roles):
            held = ", ".join(sorted(roles_of(user))) or "no role"
            raise ApiError(
                403,
                f"This endpoint is for the {' or '.join(self.roles)} role; the token's account "
                f"has {held}.",
            )
        return user
