from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from accounts.roles import ROLES, role_label


class Command(BaseCommand):
    help = "Create or update the staff roles (operator, kyc_reviewer, finance, admin) as groups."

    def handle(self, *args, **options):
        for name, spec in ROLES.items():
            group, created = Group.objects.get_or_create(name=name)
            if spec["perms"] == "__all__":
                perms = list(Permission.objects.all())
            else:
                perms = []
                for dotted in spec["perms"]:
                    app_label, codename = dotted.split(".", 1)
                    perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
                    if perm is None:
                        # A model that this deployment does not have yet contributes nothing.
                        self.stderr.write(f"  skipped unknown permission {dotted}")
                        continue
                    perms.append(perm)
            group.permissions.set(perms)
            verb = "created" if created else "updated"
            self.stdout.write(f"{verb} role {name} ({role_label(name)}): {len(perms)} permissions")
