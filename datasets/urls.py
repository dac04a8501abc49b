from django.urls import path

from datasets.pages import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("import/", views.upload, name="upload"),
    path("import/<int:pk>/", views.job, name="job"),
    path("import/<int:pk>/status/", views.job_status, name="job-status"),
    path("<slug:slug>/", views.dataset_detail, name="detail"),
    path("<slug:slug>/items/", views.dataset_items, name="items"),
]
