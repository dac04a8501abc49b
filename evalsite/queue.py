"""Send Celery tasks after commit without letting a broker outage break the request.

Services name the task they queue ("reviews.aggregate_campaign") instead of importing the tasks
module: a task module imports the service it calls, so a service importing it back would close
an import circle.
"""

import logging
from functools import partial

from celery import Task
from django.db import transaction

from evalsite.celery import app

logger = logging.getLogger(__name__)


def task_named(name: str) -> Task:
    """The registered task called ``name``, loading the apps' tasks modules on first use."""
    if name not in app.tasks:
        # Celery's autodiscovery imports each installed app's tasks module on this signal.
        app.loader.import_default_modules()
    return app.tasks[name]


def send_safely(task: Task | str, *args, **kwargs) -> bool:
    """Send ``task``; if the broker is down, log it and return False instead of raising.

    Callers keep their own record (an ImportJob, a counter on the campaign) so that the
    nightly beat run, or the next send, picks the work up once the broker is back.
    """
    if isinstance(task, str):
        task = task_named(task)
    try:
        if not task.app.conf.task_always_eager:
            # Connect the pool's connection that the send will use, with one attempt: left to
            # itself kombu retries a refused connection for ~6 s, and the reviewer whose
            # judgment triggered the send would wait for it.
            with task.app.amqp.producer_pool.connections.acquire(block=True) as connection:
                connection.ensure_connection(max_retries=0)
        task.apply_async(args=args, kwargs=kwargs, retry=False)
    except Exception:
        logger.exception("Could not send %s; it will be picked up later", task.name)
        return False
    return True


def enqueue_on_commit(task: Task | str, *args, **kwargs) -> None:
    transaction.on_commit(partial(send_safely, task, *args, **kwargs))
