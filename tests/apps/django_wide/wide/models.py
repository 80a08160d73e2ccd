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


class MemberProfile(models.Model):
    """New code's model of the side table a split makes (tests/test_split_orm.py's plan): unmanaged, the
    split owns the table; its primary key is the member's."""

    # DO_NOTHING: old code deleting a member must not look for this table (the unsplit file has none)
    member = models.OneToOneField(
        Member, primary_key=True, db_column="id", on_delete=models.DO_NOTHING, db_constraint=False
    )
    bio = models.TextField(null=True)
    location = models.CharField(max_length=40, null=True)
    website = models.CharField(max_length=80, null=True)

    class Meta:
        managed = False
        db_table = "wide_member_profile"
