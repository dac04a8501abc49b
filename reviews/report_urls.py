from django.urls import path

from . import report_views

app_name = "report"

urlpatterns = [
    path("<slug:slug>/", report_views.report_page, name="page"),
    path("<slug:slug>/recompute/", report_views.recompute, name="recompute"),
    path("<slug:slug>/status/", report_views.report_status, name="status"),
]
