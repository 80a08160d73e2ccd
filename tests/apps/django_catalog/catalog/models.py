"""Every field type whose PostgreSQL column differs from its SQLite one, plus named constraints and a
deferrable foreign key (every Django ForeignKey is DEFERRABLE INITIALLY DEFERRED)."""

from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=300)
    uid = models.UUIDField(unique=True)
    ip = models.GenericIPAddressField(null=True)
    joined = models.DateTimeField()
    profile = models.JSONField(null=True)
    flags = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name"], name="catalog_author_name_uniq")]


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    pages = models.IntegerField()
    reading_time = models.DurationField()
    starts_at = models.TimeField()
    published = models.DateField()
    in_print = models.BooleanField(default=True)
    big = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(pages__gt=0), name="book_pages_sane")]
