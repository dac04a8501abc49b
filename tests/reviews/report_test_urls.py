"""The site's URLs plus the report pages, until evalsite/urls.py includes them."""

from django.urls import include, path

from evalsite.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("reports/", include("reviews.reports.urls")), *site_urlpatterns]
