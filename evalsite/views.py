from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from evalsite.roles import ANALYST, LEAD, REVIEWER, roles_of


@login_required
def home(request):
    """Send each role to its own landing page; a user with no role is told so."""
    roles = roles_of(request.user)
    if LEAD in roles:
        return redirect("reviews:campaigns")
    if ANALYST in roles:
        return redirect("reviews:reports")
    if REVIEWER in roles:
        return redirect("reviews:queue")
    return render(request, "no_role.html", status=403)
