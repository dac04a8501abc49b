from evalsite.roles import roles_of


def roles(request):
    """Expose the user's roles to templates (for navigation only; views check access)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"roles": frozenset()}
    return {"roles": roles_of(user)}
