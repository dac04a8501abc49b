"""Fresh planner statistics after a bulk write (PostgreSQL).

Without them the planner takes a table that just grew by thousands of rows for the size it had,
and the next page, claim or export plans blind: the first export after a bulk load took 53 s
instead of 20 s, and claims read every assignment of the campaign (issue #20). Autovacuum does
the same eventually, when it is on; this does it as soon as the rows are committed.
"""

from functools import partial

from django.db import connection, transaction

# Below this many rows the statistics a table already has are close enough.
ANALYZE_AFTER_ROWS = 10_000


def analyze_after_commit(tables: list[str], *, rows: int) -> None:
    """ANALYZE ``tables`` once the current transaction commits, when ``rows`` were written."""
    if connection.vendor != "postgresql" or rows < ANALYZE_AFTER_ROWS:
        return
    transaction.on_commit(partial(_analyze, tables))


def _analyze(tables: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))
