"""``python tests/faults/worker.py worker ...``: the evalsite Celery worker, with a Redis
visibility timeout from FAULTS_VISIBILITY_TIMEOUT when it is set.

Production keeps the timeout above the hard time limit (40 min), so a task whose worker died
comes back only after that long; a fault test sets it to seconds, for this worker only, so that
a message left unacknowledged by a killed worker is redelivered while the test waits.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evalsite.celery import app

if os.environ.get("FAULTS_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "visibility_timeout": float(os.environ["FAULTS_VISIBILITY_TIMEOUT"]),
        # Look for unacknowledged messages every second, not every 100 s.
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])
