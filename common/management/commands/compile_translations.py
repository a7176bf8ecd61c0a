"""manage.py compile_translations: .po → .mo for the project's own catalogs (common.translations)."""

from django.core.management.base import BaseCommand, CommandError

from common.translations import AUTO, CatalogError, catalogs, compile_catalogs, find_msgfmt


class Command(BaseCommand):
    help = ("Compile the project's translation catalogs (locale/ and each app's locale/) into the .mo files Django "
            "reads: with GNU gettext's msgfmt --check when installed, else with polib. Only catalogs whose .mo "
            "is missing or older than the .po, unless --force.")
    requires_system_checks = []  # the translations check would only warn about what this command fixes

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="compile every catalog, even up-to-date ones")
        parser.add_argument("--polib", action="store_true", help="use polib even when msgfmt is installed")

    def handle(self, *args, force, polib, **options):
        tool = "polib" if polib or not find_msgfmt() else "msgfmt"
        try:
            compiled = compile_catalogs(force=force, msgfmt=None if polib else AUTO)
        except CatalogError as exc:
            raise CommandError(f"translation catalogs not compiled:\n{exc}") from None
        if compiled:
            self.stdout.write(f"compiled {len(compiled)} of {len(catalogs())} translation catalogs ({tool})")
        elif options["verbosity"] > 1:
            self.stdout.write(f"translation catalogs up to date ({len(catalogs())})")
