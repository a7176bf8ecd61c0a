"""System checks of the project's own: translation catalogs compiled (common.translations)."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Warning, register

from .translations import catalogs, is_stale, mo_path


@register()
def translations_compiled(app_configs=None, **kwargs):
    stale = [po for po in catalogs() if is_stale(po)]
    if not stale:
        return []
    base = Path(settings.BASE_DIR).resolve()
    names = ", ".join(str(mo_path(po).relative_to(base) if po.is_relative_to(base) else mo_path(po))
                      for po in stale[:5])
    return [Warning(f"{len(stale)} translation catalog(s) not compiled or out of date ({names}"
                    f"{', …' if len(stale) > 5 else ''}): the pages would show English msgids.",
                    hint="Run: python manage.py compile_translations", id="common.W001")]
