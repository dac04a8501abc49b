import socket

from celery import shared_task

from evalsite.models import WorkerHeartbeat


@shared_task(name="evalsite.heartbeat")
def heartbeat(note: str = "") -> int:
    """Record which worker ran this; returns the new row's id. Used to check the task path."""
    return WorkerHeartbeat.objects.create(hostname=socket.gethostname(), note=note[:255]).pk
