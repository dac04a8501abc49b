"""django-ninja against Django REST framework on one endpoint: ``GET /campaigns/{slug}/decision``.

    python benchmarks/api_framework.py [N_REQUESTS]   (default 500; DRF measured if installed)

All three answer the same JSON from the same access function and service
(``reviews.reports.gate``) with the same token lookup, through the whole Django stack (test
client, in-memory SQLite test database), in interleaved rounds. Prints the median and p95
milliseconds per request for each, and plain Django (a function view) as the floor.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark")
os.environ.pop("DATABASE_URL", None)

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from django.urls import include, path  # noqa: E402

from evalsite import tokens  # noqa: E402
from reviews import access  # noqa: E402
from reviews.reports import gate  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
ROUNDS = 10


def plain_view(request, slug):
    auth = request.headers.get("Authorization", "")
    user = tokens.user_for_token(auth.removeprefix("Bearer "))
    if user is None:
        return JsonResponse({"error": "bad token", "details": []}, status=401)
    campaign = access.campaign_for_reports(user, slug)
    return JsonResponse(gate.campaign_decision(campaign=campaign))


def drf_patterns():
    try:
        from rest_framework.authentication import BaseAuthentication
        from rest_framework.response import Response
        from rest_framework.views import APIView
    except ImportError:
        return None

    class TokenAuthentication(BaseAuthentication):
        def authenticate(self, request):
            raw = request.headers.get("Authorization", "").removeprefix("Bearer ")
            user = tokens.user_for_token(raw)
            return (user, raw) if user else None

    class Decision(APIView):
        authentication_classes = [TokenAuthentication]
        permission_classes = []

        def get(self, request, slug):
            campaign = access.campaign_for_reports(request.user, slug)
            return Response(gate.campaign_decision(campaign=campaign))

    return [path("drf/<slug:slug>/decision", Decision.as_view())]


def timed(client, url, headers, n) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content
    return times


def main() -> None:
    from evalsite.urls import urlpatterns
    from tests.conftest import make_user
    from tests.factories import CampaignFactory

    setup_test_environment()
    settings.DATABASES["default"]["NAME"] = ":memory:"
    connection.creation.create_test_db(verbosity=0)
    analyst = make_user("bench@example.org", "analyst")
    campaign = CampaignFactory()
    headers = {"Authorization": f"Bearer {tokens.create_api_token(user=analyst)[1]}"}
    extra = [path("plain/<slug:slug>/decision", plain_view)]
    drf = drf_patterns()
    if drf:
        extra += drf
    module = type(sys)("bench_urls")
    module.urlpatterns = [*urlpatterns, path("bench/", include(extra))]
    sys.modules["bench_urls"] = module
    apps = [*settings.INSTALLED_APPS, *(["rest_framework"] if drf else [])]
    with override_settings(ROOT_URLCONF="bench_urls", INSTALLED_APPS=apps):
        client = Client()
        urls = {
            "django-ninja": f"/api/v1/campaigns/{campaign.slug}/decision",
            "plain Django": f"/bench/plain/{campaign.slug}/decision",
        }
        if drf:
            urls["DRF"] = f"/bench/drf/{campaign.slug}/decision"
        for url in urls.values():
            timed(client, url, headers, 50)  # warm up
        # Interleaved rounds, so that a busy moment of the machine falls on all of them alike.
        times: dict[str, list[float]] = {name: [] for name in urls}
        for _ in range(ROUNDS):
            for name, url in urls.items():
                times[name] += timed(client, url, headers, N // ROUNDS)
        for name, measured in times.items():
            measured.sort()
            p95 = measured[int(0.95 * len(measured)) - 1]
            median = statistics.median(measured)
            print(f"{name}: median {median:.2f} ms, p95 {p95:.2f} ms ({len(measured)} requests)")
        if not drf:
            print("DRF: not installed (pip install djangorestframework to compare)")


if __name__ == "__main__":
    main()
