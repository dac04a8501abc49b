from django.urls import path

from reviews.api import webhook_views
from reviews.audit import views as audit_views
from reviews.campaigns import adjudication_views, people_views, rubric_views
from reviews.campaigns import views as campaign_views
from reviews.grading import views as grading_views
from reviews.reports import views as report_views

app_name = "reviews"

urlpatterns = [
    path("queue/", grading_views.queue, name="queue"),
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_views.campaign_create, name="campaign-create"),
    path("campaigns/<slug:slug>/", campaign_views.campaign_detail, name="campaign-detail"),
    path(
        "campaigns/<slug:slug>/progress/",
        campaign_views.campaign_progress,
        name="campaign-progress",
    ),
    path("campaigns/<slug:slug>/flags/", campaign_views.campaign_flags, name="campaign-flags"),
    path("campaigns/<slug:slug>/edit/", campaign_views.campaign_edit, name="campaign-edit"),
    path(
        "campaigns/<slug:slug>/pause/",
        campaign_views.campaign_set_status,
        {"action": "pause"},
        name="campaign-pause",
    ),
    path(
        "campaigns/<slug:slug>/resume/",
        campaign_views.campaign_set_status,
        {"action": "resume"},
        name="campaign-resume",
    ),
    path(
        "campaigns/<slug:slug>/close/",
        campaign_views.campaign_set_status,
        {"action": "close"},
        name="campaign-close",
    ),
    path("campaigns/<slug:slug>/batches/new/", campaign_views.batch_create, name="batch-create"),
    path("campaigns/<slug:slug>/unassign/", campaign_views.unassign, name="unassign"),
    path("campaigns/<slug:slug>/reassign/", campaign_views.reassign, name="reassign"),
    path(
        "campaigns/<slug:slug>/webhook/",
        webhook_views.campaign_webhook,
        name="campaign-webhook",
    ),
    path("campaigns/<slug:slug>/reinstate/", campaign_views.reinstate, name="reinstate"),
    path(
        "campaigns/<slug:slug>/adjudication/",
        adjudication_views.adjudication,
        name="adjudication",
    ),
    path("rubrics/", rubric_views.rubric_list, name="rubrics"),
    path("rubrics/new/", rubric_views.rubric_create, name="rubric-create"),
    path("rubrics/import/", rubric_views.rubric_import, name="rubric-import"),
    path("rubrics/<int:pk>/", rubric_views.rubric_edit, name="rubric-edit"),
    path("rubrics/<int:pk>/export/", rubric_views.rubric_export, name="rubric-export"),
    path("rubrics/<int:pk>/copy/", rubric_views.rubric_copy, name="rubric-copy"),
    path("reports/", report_views.reports, name="reports"),
    path("people/", people_views.people_list, name="people"),
    path("people/invite/", people_views.invite, name="people-invite"),
    path("audit/", audit_views.audit_log, name="audit"),
]
