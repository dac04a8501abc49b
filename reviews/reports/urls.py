from django.urls import path

from reviews.reports import migration_views, timeline_views
from reviews.reports import views as report_views

app_name = "report"

urlpatterns = [
    path("timeline/<slug:slug>/", timeline_views.timeline_page, name="timeline"),
    path("timeline/<slug:slug>.csv", timeline_views.timeline_csv, name="timeline-csv"),
    path("<slug:slug>/", report_views.report_page, name="page"),
    path("<slug:slug>/recompute/", report_views.recompute, name="recompute"),
    path("<slug:slug>/status/", report_views.report_status, name="status"),
    path("<slug:slug>/migration/", migration_views.migration_page, name="migration"),
    path("<slug:slug>/migration/next-batch/", migration_views.next_batch, name="next-batch"),
]
