from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by the ``evalsite.heartbeat`` task: proof that a Celery worker ran it."""

    hostname = models.CharField(max_length=255)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.hostname} at {self.created_at:%Y-%m-%d %H:%M:%S}"
