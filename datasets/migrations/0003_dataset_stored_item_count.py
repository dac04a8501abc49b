from django.db import migrations, models


def count_items(apps, schema_editor):
    Dataset = apps.get_model("datasets", "Dataset")
    Item = apps.get_model("datasets", "Item")
    for dataset in Dataset.objects.only("pk"):
        n_items = Item.objects.filter(dataset_id=dataset.pk).count()
        Dataset.objects.filter(pk=dataset.pk).update(n_items=n_items)


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_import_progress_and_stats")]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="n_items",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(count_items, migrations.RunPython.noop),
    ]
