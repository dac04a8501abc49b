from django.urls import path

from datasets.importing import views as import_views
from datasets.pages import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("import/", import_views.upload, name="upload"),
    path("import/<int:pk>/", import_views.job, name="job"),
    path("import/<int:pk>/status/", import_views.job_status, name="job-status"),
    path("<slug:slug>/", views.dataset_detail, name="detail"),
    path("<slug:slug>/items/", views.dataset_items, name="items"),
]
