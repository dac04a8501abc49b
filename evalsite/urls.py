from django.contrib import admin
from django.urls import include, path

from evalsite import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("datasets/", include("datasets.urls")),
    path("grade/", include("reviews.grading.urls")),
    path("exports/", include("reviews.exports.urls")),
    path("reports/", include("reviews.reports.urls")),
    path("", include("reviews.urls")),
]
