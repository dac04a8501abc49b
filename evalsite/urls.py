from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("datasets/", include("datasets.urls")),
    path("grade/", include("reviews.grading_urls")),
    path("exports/", include("reviews.export_urls")),
    path("reports/", include("reviews.report_urls")),
    path("", include("reviews.urls")),
]
