"""The project's translation catalogs: where they are, compiling them (.po → .mo), checking them.

Catalogs are standard gettext .po files with English msgids: `locale/` (LOCALE_PATHS: the project's
templates/ and config/) and each project app's own `<app>/locale/`. The .mo files Django reads are build
output, never committed: `manage.py compile_translations` writes them — with GNU gettext's `msgfmt --check`
when it is installed, otherwise with the pure-Python polib — for every catalog whose .mo is missing or older
than its .po. Both ways also run `placeholder_problems` on every entry (a translation must keep the msgid's
`%(name)s` / `{name}` placeholders, or formatting it fails at run time in Chinese only). ./run, ./test and CI
compile first; a system check (manage.py check, runserver) warns when a catalog is not compiled.

Django's own `compilemessages` is not used: it walks the whole working tree for `locale` folders, so it would
also rewrite the catalogs of the packages installed in .venv, and it has no fallback without msgfmt.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.apps import apps
from django.conf import settings

AUTO = "auto"

# printf-style placeholders as Python's % operator reads them (`%%` is a literal percent sign), and
# str.format fields (`{{`/`}}` are literal braces; `{% … %}` template tags are not fields).
_PERCENT = re.compile(r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?"
                      r"(?P<conv>[diouxXeEfFgGcrsa%])")
_BRACE = re.compile(r"\{\{|\}\}|\{(?P<field>[A-Za-z_][\w.\[\]]*|\d*)(?:![rsa])?(?::[^{}]*)?\}")


class CatalogError(Exception):
    """A catalog that cannot be compiled (syntax, header, or a translation that drops a placeholder)."""


def project_app_configs() -> list:
    """The installed apps that live in this project (not the packages installed in .venv)."""
    base = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs()
            if Path(config.path).resolve().is_relative_to(base)
            and not Path(config.path).resolve().is_relative_to(base / ".venv")]


def project_locale_dirs() -> list[Path]:
    """LOCALE_PATHS and the `locale` folder of every app of the project."""
    dirs = [Path(p).resolve() for p in settings.LOCALE_PATHS]
    dirs += [Path(config.path).resolve() / "locale" for config in project_app_configs()]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def catalogs() -> list[Path]:
    """Every .po file of the project."""
    return sorted(po for d in project_locale_dirs() if d.is_dir() for po in d.glob("*/LC_MESSAGES/*.po"))


def mo_path(po: Path) -> Path:
    return po.with_suffix(".mo")


def is_stale(po: Path) -> bool:
    mo = mo_path(po)
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


def placeholders(text: str) -> list[str]:
    """The format placeholders in a message, sorted (`%(n)d`, `%s`, `{n}`, `{}`)."""
    found = [m.group(0) for m in _PERCENT.finditer(text) if m.group("conv") != "%"]
    found += [m.group(0) for m in _BRACE.finditer(text) if m.group(0) not in ("{{", "}}")]
    return sorted(found)


def placeholder_problems(po: Path) -> list[str]:
    """Entries whose translation does not carry exactly the msgid's placeholders."""
    problems = []
    for entry in _read(po).translated_entries():
        if entry.msgid_plural:
            pairs = [(entry.msgid_plural, text) for _, text in sorted(entry.msgstr_plural.items())]
        else:
            pairs = [(entry.msgid, entry.msgstr)]
        for source, text in pairs:
            if placeholders(source) != placeholders(text):
                problems.append(f"{po}:{entry.linenum}: {entry.msgid!r}: the translation has placeholders "
                                f"{placeholders(text)}, the msgid {placeholders(source)}")
    return problems


def find_msgfmt() -> str | None:
    return shutil.which("msgfmt")


def compile_catalog(po: Path, *, msgfmt: str | None = AUTO) -> Path:
    """Write the .mo next to `po` (atomically: readers never see half a file). `msgfmt`: the program's path,
    None for polib, AUTO to use msgfmt when installed. Raises CatalogError."""
    if msgfmt == AUTO:
        msgfmt = find_msgfmt()
    problems = placeholder_problems(po)
    if problems:
        raise CatalogError("\n".join(problems))
    mo = mo_path(po)
    fd, tmp = tempfile.mkstemp(prefix=".django-", suffix=".mo.tmp", dir=po.parent)
    os.close(fd)
    try:
        if msgfmt:
            done = subprocess.run([msgfmt, "--check", "-o", tmp, str(po)], capture_output=True, text=True)
            if done.returncode != 0:
                raise CatalogError(f"{po}: msgfmt --check failed:\n{done.stderr.strip()}")
        else:
            _polib_compile(po, Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, mo)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return mo


def _read(po: Path):
    import polib

    try:
        return polib.pofile(str(po), check_for_duplicates=True)
    except (OSError, ValueError) as exc:  # polib reports syntax errors and duplicates as OSError / ValueError
        raise CatalogError(f"{po}: {exc}") from exc


def _polib_compile(po: Path, target: Path) -> None:
    catalog = _read(po)
    if "charset=UTF-8" not in catalog.metadata.get("Content-Type", ""):
        raise CatalogError(f"{po}: the header must declare Content-Type: text/plain; charset=UTF-8")
    # Like msgfmt: fuzzy and obsolete entries are left out (polib's translated entries).
    catalog.save_as_mofile(str(target))


def compile_catalogs(*, force: bool = False, msgfmt: str | None = AUTO) -> list[Path]:
    """Compile every project catalog whose .mo is missing or out of date (all of them with `force`).
    Returns the catalogs compiled. Raises CatalogError naming every catalog that failed."""
    compiled, errors = [], []
    for po in catalogs():
        if force or is_stale(po):
            try:
                compile_catalog(po, msgfmt=msgfmt)
            except CatalogError as exc:
                errors.append(str(exc))
            else:
                compiled.append(po)
    if errors:
        raise CatalogError("\n".join(errors))
    return compiled


def reset_translation_caches() -> None:
    """Make Django read the catalogs again (after compiling them in a running process, e.g. the test run)."""
    import gettext

    from asgiref.local import Local
    from django.utils.translation import trans_real

    gettext._translations.clear()  # the standard library's cache of parsed .mo files, by path
    trans_real._translations = {}
    trans_real._default = None
    trans_real._active = Local()
    trans_real.translation_catalog_exists.cache_clear()
