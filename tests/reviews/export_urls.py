"""The site's URLs plus the exports app, until evalsite/urls.py includes it."""

from django.urls import include, path

from evalsite.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("exports/", include("reviews.exports.urls")), *site_urlpatterns]
