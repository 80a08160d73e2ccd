"""The application's next migration, run on PostgreSQL after the move: a new field, a named constraint removed."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [
        migrations.AddField("book", "isbn", models.CharField(max_length=13, null=True)),
        migrations.RemoveConstraint("book", "book_pages_sane"),
    ]
