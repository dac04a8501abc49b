from django.contrib import admin
from django.urls import include, path

from evalsite import token_views, views
from reviews.api.endpoints import api

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path(
        "account/api-tokens/",
        include(
            (
                [
                    path("", token_views.token_list, name="list"),
                    path("<int:pk>/revoke/", token_views.token_revoke, name="revoke"),
                ],
                "tokens",
            )
        ),
    ),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("datasets/", include("datasets.urls")),
    path("grade/", include("reviews.grading.urls")),
    path("exports/", include("reviews.exports.urls")),
    path("reports/", include("reviews.reports.urls")),
    path("", include("reviews.urls")),
]
