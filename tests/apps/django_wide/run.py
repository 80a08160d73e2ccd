"""Steps of the wide-model Django project: `python run.py STEP` with PGFERRY_TEST_DB=sqlite:PATH.

seed   migrate and write members (some with a profile, a few with links)
orm    create/save/save(update_fields)/update/delete/bulk_create on the model; prints one JSON line
       of what the ORM reported (pks, rowcounts) and the rows read back, to compare split against unsplit
remake alter a field as a migration does on SQLite (the table is rebuilt: its triggers are gone)
touch  one UPDATE of a moved column by old code
side   new code's model of the side table (after the split of tests/test_split_orm.py's plan)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django

django.setup()

from django.core.management import call_command
from wide.models import Member, MemberProfile


def seed() -> None:
    call_command("migrate", verbosity=0)
    for i in range(1, 41):
        profile = i % 3 == 0
        Member.objects.create(
            username=f"m{i}",
            email=f"m{i}@x",
            logins=i,
            bio=f"bio {i}" if profile else None,
            location="Oslo" if profile else None,
            website=f"https://m{i}.test" if profile else None,
            github=f"gh{i}" if i % 7 == 0 else None,
            mastodon=f"@m{i}" if i % 11 == 0 else None,
            discord=f"d{i}" if i % 13 == 0 else None,
        )


def orm() -> None:
    out: dict = {}
    created = Member.objects.create(username="new", email="n@x", bio="fresh", github="ghnew")
    out["create_pk"] = created.pk
    created.location = "Bergen"
    created.save()
    existing = Member.objects.get(username="m3")
    existing.bio = "changed"
    existing.save(update_fields=["bio"])
    existing.website = None
    existing.save()
    out["update"] = Member.objects.filter(logins__lt=5).update(discord="dd")
    out["update_none"] = Member.objects.filter(username="nobody").update(bio="x")
    out["delete"] = Member.objects.filter(username__in=["m6", "m7"]).delete()[0]
    made = Member.objects.bulk_create([Member(username=f"b{i}", email="b@x", mastodon=f"@b{i}") for i in range(3)])
    out["bulk_pks"] = [m.pk for m in made]
    out["rows"] = [list(r) for r in Member.objects.order_by("id").values_list()]
    print(json.dumps(out))


def side() -> None:
    """New code on the side table through its own model (the split plan's wide_member_profile)."""
    out: dict = {}
    profile = MemberProfile.objects.get(member_id=3)
    profile.bio = "via side"
    profile.save()
    out["side_update"] = MemberProfile.objects.filter(member_id__in=[3, 6]).update(location="Side")
    member = Member.objects.create(username="sidecar", email="s@x")
    MemberProfile.objects.create(member=member, bio="created via side")
    out["member_view"] = [
        list(r) for r in Member.objects.filter(pk__in=[3, 6, member.pk]).order_by("pk").values_list("bio", "location")
    ]
    MemberProfile.objects.filter(member=member).delete()
    out["after_delete"] = list(Member.objects.filter(pk=member.pk).values_list("bio", "location")[0])
    print(json.dumps(out))


def remake() -> None:
    """What a migration altering a field does on SQLite: Django rebuilds the table (create, copy, drop,
    rename), which drops every trigger on it."""
    from django.db import connection, models

    old = Member._meta.get_field("username")
    new = models.CharField(max_length=99, unique=True)
    new.set_attributes_from_name("username")
    new.model = Member
    with connection.schema_editor() as editor:
        editor.alter_field(Member, old, new)
    print("ok")


def touch() -> None:
    """One write by old code."""
    Member.objects.filter(username="m3").update(bio="written while the triggers were gone")
    print("ok")


if __name__ == "__main__":
    {"seed": seed, "orm": orm, "side": side, "remake": remake, "touch": touch}[sys.argv[1]]()
