from django.urls import path

from reviews.grading import views as grading_views

app_name = "grading"

urlpatterns = [
    path("start/<str:public_id>/", grading_views.start, name="start"),
    path("<str:token>/", grading_views.grade, name="grade"),
    path("<str:token>/submit/", grading_views.submit, name="submit"),
    path("<str:token>/skip/", grading_views.skip, name="skip"),
    path("<str:token>/flag/", grading_views.flag, name="flag"),
]
