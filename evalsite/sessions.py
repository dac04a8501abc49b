"""Database sessions, read with one SQL statement.

Every request reads its session. Sessions stay in the database so that grading never waits on
Redis; reading one through the ORM cost ~0.7 ms of CPU per request, this ~0.1 ms (measured,
benchmarks/grading_server_time.py). Writes and everything else are Django's.
"""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.utils import timezone


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        if not self.session_key:  # the base class drops keys shorter than 8 characters
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT session_data, expire_date FROM django_session"
                " WHERE session_key = %s AND expire_date > %s",
                [self.session_key, timezone.now()],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        data, expire_date = row
        return self.model(session_key=self.session_key, session_data=data, expire_date=expire_date)
