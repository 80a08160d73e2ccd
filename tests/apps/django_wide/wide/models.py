from django.db import models


class Member(models.Model):
    """A wide model: a few columns every row fills, a family filled together, sparse links."""

    username = models.CharField(max_length=40, unique=True)
    email = models.CharField(max_length=80)
    logins = models.IntegerField(default=0)
    bio = models.TextField(null=True)
    location = models.CharField(max_length=40, null=True)
    website = models.CharField(max_length=80, null=True)
    github = models.CharField(max_length=40, null=True)
    mastodon = models.CharField(max_length=40, null=True)
    discord = models.CharField(max_length=40, null=True)
