"""The "API tokens" page: every signed-in user manages their own tokens (a token acts with its
owner's roles, so a reviewer's token can do no more than the reviewer's pages)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from evalsite import tokens


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="What the token is for, e.g. “deploy pipeline”."
    )


@require_http_methods(["GET", "POST"])
@login_required
def token_list(request):
    """The user's tokens; a POST creates one and shows it on this response only (no redirect:
    the token is not kept anywhere it could be shown again)."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            _, created = tokens.create_api_token(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            form = TokenForm()
    context = {"tokens": tokens.tokens_of(request.user), "form": form, "created": created}
    response = render(request, "account/api_tokens.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def token_revoke(request, pk: int):
    if not tokens.revoke_api_token(user=request.user, token_id=pk):
        raise Http404("No such token of yours.")
    messages.success(request, "The token is revoked: requests that send it now get a 401.")
    return redirect("tokens:list")
