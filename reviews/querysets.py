"""Named read shapes for reviews models; each carries its own select_related."""

from django.db import models


class CampaignQuerySet(models.QuerySet):
    def with_systems(self):
        return self.select_related("dataset", "baseline", "candidate", "rubric")


class AssignmentQuerySet(models.QuerySet):
    def queue_for(self, user):
        """The reviewer's own assignments in queue order (never anyone else's)."""
        return self.filter(reviewer=user).order_by("campaign_id", "position")

    def pending(self):
        return self.filter(status="pending")
