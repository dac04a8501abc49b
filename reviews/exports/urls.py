from django.urls import path

from reviews.exports import views as export_views

app_name = "exports"

urlpatterns = [
    path("log/", export_views.export_log, name="log"),
    path("<slug:slug>/", export_views.export_form, name="form"),
    path("<slug:slug>/download/", export_views.download, name="download"),
    path("<slug:slug>/import/", export_views.import_upload, name="import"),
    path("<slug:slug>/report.csv", export_views.report_csv, name="report-csv"),
    path("<slug:slug>/flags.csv", export_views.flags_csv, name="flags-csv"),
]
