from django.contrib import admin

from datasets.models import Dataset, ImportJob, Item, Response, System


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_by", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["stats", "stats_updated_at"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "dataset"]
    list_filter = ["dataset"]
    search_fields = ["external_id"]
    list_select_related = ["dataset"]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["item", "system"]
    list_filter = ["system"]
    raw_id_fields = ["item"]
    list_select_related = ["item", "system"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["filename", "dataset_name", "status", "rows_total", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["errors", "summary", "sha256"]
