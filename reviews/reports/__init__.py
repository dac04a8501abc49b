"""What an analyst reads: the aggregation of judgments into a Report, and the pages over it.

``stats`` and ``calibration`` are pure statistics (no Django); ``aggregation`` builds their frames
from the database and stores the Report (run by the Celery task in ``reviews.tasks``);
``migration`` turns a Report into the migration page and the next batch's choice.
"""
