from django.db import migrations, models


def upgrade_name_patterns(apps, schema_editor):
    """System names stored as (?<!\\w)name(?!\\w) for Python's re: RE2 has no look-arounds, so the
    campaign edit form would refuse patterns the lead never wrote."""
    from reviews.campaigns.masking import upgrade_pattern

    Campaign = apps.get_model("reviews", "Campaign")
    for campaign in Campaign.objects.only("pk", "mask_patterns").iterator():
        upgraded = list(dict.fromkeys(upgrade_pattern(p) for p in campaign.mask_patterns))
        if upgraded != campaign.mask_patterns:
            Campaign.objects.filter(pk=campaign.pk).update(mask_patterns=upgraded)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0003_assignment_next_item_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="reviewer_title",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(upgrade_name_patterns, migrations.RunPython.noop, elidable=True),
    ]
