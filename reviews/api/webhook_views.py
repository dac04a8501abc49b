"""The lead's webhook page for a campaign: URL and secret, and the delivery log."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from evalsite.roles import LEAD, role_required
from reviews import access
from reviews.api import webhooks


class WebhookForm(forms.Form):
    url = forms.URLField(
        label="URL", required=False, max_length=500, assume_scheme="https",
        help_text="evalsite POSTs the decision here when a report completes. Empty: no webhook.",
    )  # fmt: skip
    secret = forms.CharField(
        label="Secret",
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs each body (HMAC-SHA256, header X-Evalsite-Signature-256). Leave empty "
        "to keep the current secret.",
    )


@require_http_methods(["GET", "POST"])
@role_required(LEAD)
def campaign_webhook(request, slug):
    campaign = access.campaign_for_lead(request.user, slug)
    form = WebhookForm(request.POST or None, initial={"url": campaign.webhook_url})
    if request.method == "POST" and form.is_valid():
        try:
            webhooks.set_webhook(
                campaign=campaign,
                url=form.cleaned_data["url"],
                secret=form.cleaned_data["secret"] or None,
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, "Webhook saved." if campaign.webhook_url else "Webhook removed."
            )
            return redirect("reviews:campaign-webhook", slug=campaign.slug)
    context = {
        "campaign": campaign,
        "form": form,
        "deliveries": webhooks.deliveries_of(campaign),
        "signature_header": webhooks.SIGNATURE_HEADER,
    }
    return render(request, "reviews/campaign_webhook.html", context)
