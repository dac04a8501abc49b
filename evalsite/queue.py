"""Send Celery tasks after commit without letting a broker outage break the request.

Services name the task they queue ("reviews.aggregate_campaign") instead of importing the tasks
module: a task module imports the service it calls, so a service importing it back would close
an import circle.
"""

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from celery import Task
from django.db import connections, transaction

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


def send_after_response(
    task: Task | str, *args, on_failure: Callable[[], None] | None = None
) -> None:
    """After commit, send ``task`` from a background thread, so the request that made it due
    answers without waiting for the broker (connecting and sending took ~76 ms of a
    submit-and-next, issue #20); ``on_failure`` runs there if the broker is down. Eager Celery
    (tests, no broker) sends in the caller's thread: the task then runs where its data is."""
    transaction.on_commit(partial(_send_off_request, task, args, on_failure))


_sender: tuple[int, ThreadPoolExecutor] | None = None


def _send_off_request(task, args, on_failure) -> Future | None:
    global _sender
    if app.conf.task_always_eager:
        _send(task, args, on_failure, in_background=False)
        return None
    # One thread per process, made on first use: a pool made before a server forks its
    # workers would have no thread in them. Its thread is joined at exit, so a send under way
    # still goes out (and anything missed is picked up by the nightly run).
    if _sender is None or _sender[0] != os.getpid():
        _sender = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="evalsite-send"))
    return _sender[1].submit(_send, task, args, on_failure, in_background=True)


def _send(task, args, on_failure, *, in_background: bool) -> None:
    try:
        if not send_safely(task, *args) and on_failure is not None:
            on_failure()
    finally:
        if in_background:
            connections.close_all()  # this thread's own, if on_failure opened one


def wait_for_sends() -> None:
    """Block until the sends queued so far have gone (tests, and a clean shutdown)."""
    if _sender is not None and _sender[0] == os.getpid():
        _sender[1].submit(lambda: None).result()
