from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The table of settings.CACHES' DatabaseCache (allauth's rate limits are kept there, shared
    # by every web process); createcachetable skips a table that exists.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("evalsite", "0002_workerheartbeat")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
