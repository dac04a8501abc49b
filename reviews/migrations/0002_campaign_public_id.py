import secrets

from django.db import migrations, models

import reviews.models


def fill_public_ids(apps, schema_editor):
    Campaign = apps.get_model("reviews", "Campaign")
    for campaign in Campaign.objects.filter(public_id__isnull=True):
        campaign.public_id = secrets.token_urlsafe(16)
        campaign.save(update_fields=["public_id"])


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="public_id",
            field=models.CharField(max_length=32, null=True, editable=False),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="campaign",
            name="public_id",
            field=models.CharField(
                default=reviews.models.new_token, editable=False, max_length=32, unique=True
            ),
        ),
    ]
