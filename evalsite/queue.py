"""Send Celery tasks after commit without letting a broker outage break the request."""

import logging
from functools import partial

from django.db import transaction

logger = logging.getLogger(__name__)


def send_safely(task, *args, **kwargs) -> bool:
    """Send ``task``; if the broker is down, log it and return False instead of raising.

    Callers keep their own record (an ImportJob, a counter on the campaign) so that the
    nightly beat run, or the next send, picks the work up once the broker is back.
    """
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False)
    except Exception:
        logger.exception("Could not send %s; it will be picked up later", task.name)
        return False
    return True


def enqueue_on_commit(task, *args, **kwargs) -> None:
    transaction.on_commit(partial(send_safely, task, *args, **kwargs))
