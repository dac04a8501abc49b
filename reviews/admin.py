from django import forms
from django.contrib import admin

from reviews.audit.trail import UnblindingAuditAdmin
from reviews.campaigns.masking import validate_patterns
from reviews.models import Assignment, AuditEvent, Batch, Campaign, CampaignItem, Judgment, Rubric


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["version"]


class BatchInline(admin.TabularInline):
    model = Batch
    extra = 0
    fields = ["number", "name", "due_date"]


class CampaignAdminForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = "__all__"  # noqa: DJ007 - the admin's own form, as ModelAdmin would build it

    def clean_mask_patterns(self) -> list[str]:
        patterns = self.cleaned_data["mask_patterns"]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise forms.ValidationError('A list of pattern strings, such as ["\\bAcme\\b"].')
        return validate_patterns(patterns)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = ["name", "slug", "dataset", "baseline", "candidate", "overlap", "mode", "status"]
    list_filter = ["status", "mode"]
    search_fields = ["name", "slug"]
    list_select_related = ["dataset", "baseline", "candidate"]
    raw_id_fields = ["dataset", "baseline", "candidate", "rubric", "created_by"]
    filter_horizontal = ["roster"]
    readonly_fields = ["seed", "instructions_version", "judgments_since_report"]
    inlines = [BatchInline]


@admin.register(CampaignItem)
class CampaignItemAdmin(admin.ModelAdmin):
    list_display = ["campaign", "item", "slots_taken"]
    list_select_related = ["campaign", "item"]
    raw_id_fields = ["campaign", "item", "baseline_response", "candidate_response"]


@admin.register(Assignment)
class AssignmentAdmin(UnblindingAuditAdmin, admin.ModelAdmin):
    list_display = ["token", "campaign", "reviewer", "item", "status", "position", "candidate_left"]
    list_filter = ["status", "source"]
    search_fields = ["token", "reviewer__email", "campaign__slug"]
    list_select_related = ["campaign", "reviewer", "item"]
    raw_id_fields = ["campaign", "batch", "campaign_item", "item", "reviewer"]


@admin.register(Judgment)
class JudgmentAdmin(UnblindingAuditAdmin, admin.ModelAdmin):
    list_display = ["campaign", "reviewer", "item", "preference", "revision", "is_current"]
    list_filter = ["preference", "is_current", "source"]
    list_select_related = ["campaign", "reviewer", "item"]
    raw_id_fields = ["assignment", "campaign", "item", "reviewer"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "verb", "campaign", "target"]
    list_filter = ["verb"]
    list_select_related = ["actor", "campaign"]
    readonly_fields = ["actor", "verb", "campaign", "target", "details", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
