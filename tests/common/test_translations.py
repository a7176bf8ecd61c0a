"""Translations: every msgid the project uses has its Simplified Chinese translation in a compiled catalog, the
catalogs agree with each other and with Django's own, and they compile with and without GNU gettext.

The msgids are found the way makemessages finds them, without needing gettext installed: gettext calls with a
literal message in the project's Python files (AST), `{% translate %}` / `{% blocktranslate %}` in its
templates (Django's template parser). The models and forms are also walked as Django sees them, so a label
that is not a msgid at all (a field without a verbose name shows its English attribute name) is caught too.
"""

from __future__ import annotations

import ast
import gettext as gnu_gettext
import re
import shutil
from fnmatch import fnmatch
from pathlib import Path

import polib
import pytest
from django import forms
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.template import Engine
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils import translation
from django.utils.functional import Promise

from common import translations
from common.checks import translations_compiled

BASE = Path(settings.BASE_DIR).resolve()
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")

# Modules that still hold Chinese msgids because another piece of work owns them (the admin rework converts the
# admin's own strings; the performance work owns the listed services). Only Chinese msgids are tolerated there:
# their English msgids need translations like everyone else's. Remove a line once its module is converted.
CHINESE_MSGIDS_STILL_IN = [
    "*/admin.py", "*/admin/*.py",
    "templates/admin/*", "*/templates/admin/*",
    "orders/services.py", "orders/backfill.py", "shipping/services.py", "common/inbox.py", "orders/webhooks.py",
]
# Msgids whose Chinese text is the msgid itself: names and codes staff read as they are.
SAME_IN_CHINESE = {"SKU", "IP", "App Key", "App Secret", "Sumsub", "—", "KYC"}
# Language names in the switch are each language's own name (an endonym), never translated.
SKIP_DIRS = {".venv", "var", "tests", "migrations", "node_modules", "media", "staticfiles", "bench", "deploy", "docs"}
GETTEXT_FUNCTIONS = {
    "_": (None, 0), "gettext": (None, 0), "gettext_lazy": (None, 0), "gettext_noop": (None, 0),
    "ngettext": (None, 0), "ngettext_lazy": (None, 0),
    "pgettext": (0, 1), "pgettext_lazy": (0, 1), "npgettext": (0, 1), "npgettext_lazy": (0, 1),
}


def project_files(suffix: str) -> list[Path]:
    found = []
    for path in BASE.rglob(f"*{suffix}"):
        rel = path.relative_to(BASE)
        if not SKIP_DIRS.intersection(rel.parts[:-1]):
            found.append(path)
    return sorted(found)


def is_still_chinese(rel: str) -> bool:
    return any(fnmatch(rel, pattern) for pattern in CHINESE_MSGIDS_STILL_IN)


def python_msgids() -> list[tuple[str, int, str | None, str, str | None]]:
    """(file, line, context, msgid, plural) of every gettext call with a literal message."""
    found = []
    for path in project_files(".py"):
        rel = str(path.relative_to(BASE))
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name not in GETTEXT_FUNCTIONS:
                continue
            ctx_at, msg_at = GETTEXT_FUNCTIONS[name]
            args = node.args
            message = args[msg_at] if len(args) > msg_at else None
            if not (isinstance(message, ast.Constant) and isinstance(message.value, str)):
                continue
            context = args[ctx_at].value if ctx_at is not None and isinstance(args[ctx_at], ast.Constant) else None
            plural = None
            if name.startswith(("ngettext", "npgettext")) and len(args) > msg_at + 1:
                plural = getattr(args[msg_at + 1], "value", None)
            found.append((rel, node.lineno, context, message.value, plural))
    return found


def template_files() -> list[Path]:
    dirs = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    dirs += [Path(c.path) / "templates" for c in translations.project_app_configs()]
    return sorted(p for d in dirs if d.is_dir() for p in d.rglob("*.html"))


def _literal(expression) -> str | None:
    if expression is None:
        return None
    var = getattr(expression, "var", expression)
    return getattr(var, "literal", None) if not isinstance(var, str) else var


def template_msgids() -> list[tuple[str, int, str | None, str, str | None]]:
    engine = Engine.get_default()
    found = []
    for path in template_files():
        rel = str(path.resolve().relative_to(BASE))
        template = engine.from_string(path.read_text())
        for node in template.nodelist.get_nodes_by_type(TranslateNode):
            msgid = _literal(node.filter_expression)
            if msgid is not None and not node.noop:
                found.append((rel, node.token.lineno if node.token else 0, _literal(node.message_context),
                              str(msgid), None))
        for node in template.nodelist.get_nodes_by_type(BlockTranslateNode):
            singular, _ = node.render_token_list(node.singular)
            plural = node.render_token_list(node.plural)[0] if node.plural else None
            found.append((rel, node.token.lineno if node.token else 0, _literal(node.message_context), singular,
                          plural))
    return found


def translated(context, msgid, plural) -> str:
    with translation.override("zh-hans"):
        if plural:
            return (translation.npgettext(context, msgid, plural, 2) if context
                    else translation.ngettext(msgid, plural, 2))
        return translation.pgettext(context, msgid) if context else translation.gettext(msgid)


def untranslated(entries) -> list[str]:
    """Msgids without a Chinese translation. A Chinese msgid has none either (English msgids may still name
    Chinese things: "闲管家 card pool"). In modules another piece of work still converts, msgids with Chinese
    characters are left alone; their English ones are checked too."""
    missing = []
    for rel, line, context, msgid, plural in entries:
        if not msgid.strip() or msgid in SAME_IN_CHINESE:
            continue
        if CJK.search(msgid) and is_still_chinese(rel):
            continue
        if translated(context, msgid, plural) == (plural or msgid):
            what = ("Chinese msgid (use an English msgid and translate it)" if CJK.search(msgid)
                    else "no zh_Hans translation")
            missing.append(f"{rel}:{line}: {what}: {msgid!r}")
    return missing


# --- the project's msgids ----------------------------------------------------------------------------------


def test_the_extraction_sees_the_project_s_strings():
    """Guards the guard: the walkers find known msgids of each kind (a broken walker would pass everything)."""
    python = {(rel, msgid) for rel, _, _, msgid, _ in python_msgids()}
    assert ("orders/models.py", "order") in python
    assert ("shipping/forms.py", "Courier") in python
    templates = {(rel, msgid) for rel, _, _, msgid, _ in template_msgids()}
    assert ("accounts/templates/registration/locked_out.html", "Login locked") in templates
    assert ("templates/includes/language_switch.html", "Language") in templates


def test_every_msgid_in_the_python_code_has_a_chinese_translation():
    assert untranslated(python_msgids()) == []


def test_every_msgid_in_the_templates_has_a_chinese_translation():
    assert untranslated(template_msgids()) == []


def _labels_of_models():
    """(where, label) for every label Django shows for the project's models."""
    ours = {c.label for c in translations.project_app_configs()}
    for model in apps.get_models(include_auto_created=False):
        config = apps.get_app_config(model._meta.app_label)
        if config.label not in ours:
            continue
        where = model._meta.label
        yield where, "app", config.verbose_name
        yield where, "verbose_name", model._meta.verbose_name
        yield where, "verbose_name_plural", model._meta.verbose_name_plural
        for codename, name in model._meta.permissions:
            yield f"{where}.{codename}", "permission", name
        for field in model._meta.get_fields():
            if field.auto_created or not field.concrete:
                continue
            if not field.editable and field.name in ("id",):
                continue
            yield f"{where}.{field.name}", "verbose_name", field.verbose_name
            if field.help_text:
                yield f"{where}.{field.name}", "help_text", field.help_text
            for value, label in field.flatchoices or ():
                yield f"{where}.{field.name}={value}", "choice", label


def _label_problem(where, kind, label):
    if isinstance(label, Promise):
        with translation.override("en"):
            english = str(label)
        if english in SAME_IN_CHINESE or not english.strip():
            return None
        with translation.override("zh-hans"):
            chinese = str(label)
        if chinese == english:
            what = "Chinese msgid" if CJK.search(english) else "no zh_Hans translation for"
            return f"{where} {kind}: {what} {english!r}"
        return None
    return f"{where} {kind}: {label!r} is not a translatable msgid (wrap it in gettext_lazy)"


def test_every_label_of_every_model_is_a_translated_msgid():
    problems = [p for where, kind, label in _labels_of_models() if (p := _label_problem(where, kind, label))]
    assert problems == []


def _project_form_classes():
    """Form classes defined in the project's own modules outside the admin (the admin's are its own work)."""
    seen, todo = [], [forms.BaseForm]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            module = sub.__module__.split(".")
            if module[0] in {c.name for c in translations.project_app_configs()}:
                rel = "/".join(module) + ".py"
                if not is_still_chinese(rel) and sub not in seen:
                    seen.append(sub)
    return seen


def test_every_label_of_every_form_is_a_translated_msgid():
    import shipping.forms  # noqa: F401  (forms used by admin views are imported with them; make sure)

    classes = _project_form_classes()
    assert shipping.forms.CardCodeImportForm in classes
    problems = []
    for cls in classes:
        for name, field in cls.base_fields.items():
            where = f"{cls.__module__}.{cls.__name__}.{name}"
            if field.label is None:
                problems.append(f"{where}: no label (Django would show the English field name)")
            elif p := _label_problem(where, "label", field.label):
                problems.append(p)
            if field.help_text and (p := _label_problem(where, "help_text", field.help_text)):
                problems.append(p)
    assert problems == []


def test_a_model_label_reads_in_chinese_from_the_compiled_catalog():
    from orders.models import Order, OrderStatus

    with translation.override("zh-hans"):
        assert str(Order._meta.verbose_name) == "订单"
        assert str(OrderStatus.READY_TO_SHIP.label) == "待发货"
        assert str(Order._meta.get_field("amount").verbose_name) == "金额（元）"
    with translation.override("en"):
        assert str(OrderStatus.READY_TO_SHIP.label) == "Ready to ship"


# --- the catalogs ------------------------------------------------------------------------------------------


def test_each_project_app_with_msgids_has_its_own_catalog():
    owners = {rel.split("/")[0] for rel, *_ in python_msgids() + template_msgids()}
    for app in sorted(owners):
        if app == "templates" or app == "config":
            assert (BASE / "locale/zh_Hans/LC_MESSAGES/django.po").exists()
        elif (BASE / app).is_dir() and (BASE / app / "apps.py").exists():
            assert (BASE / app / "locale/zh_Hans/LC_MESSAGES/django.po").exists(), app


def _entries():
    for po in translations.catalogs():
        for entry in polib.pofile(str(po)):
            yield po, entry


def test_catalogs_are_complete_well_formed_and_free_of_fuzzy_entries():
    pos = translations.catalogs()
    assert len(pos) >= 7  # locale/ and six apps
    for po in pos:
        catalog = polib.pofile(str(po))
        assert catalog.metadata.get("Language") == "zh_Hans", po
        assert "charset=UTF-8" in catalog.metadata.get("Content-Type", ""), po
        assert catalog.metadata.get("Plural-Forms", "").startswith("nplurals=1;"), po
        assert [e.msgid for e in catalog.fuzzy_entries()] == [], po
        assert [e.msgid for e in catalog.untranslated_entries()] == [], po
        assert translations.placeholder_problems(po) == []


def test_one_msgid_means_the_same_chinese_in_every_catalog():
    """Django merges the catalogs and the first app wins: two translations of one msgid would silently show
    one app's wording in another app's pages."""
    seen: dict[tuple, tuple[Path, str]] = {}
    conflicts = []
    for po, entry in _entries():
        key = (entry.msgctxt, entry.msgid)
        text = entry.msgstr or entry.msgstr_plural.get(0, "")
        if key in seen and seen[key][1] != text:
            conflicts.append(f"{entry.msgid!r}: {seen[key][0].relative_to(BASE)} {seen[key][1]!r}, "
                             f"{po.relative_to(BASE)} {text!r}")
        seen.setdefault(key, (po, text))
    assert conflicts == []


def test_no_project_msgid_changes_django_s_own_chinese():
    """Project catalogs take precedence over Django's: the same msgid with other words would change the
    admin's own buttons and messages everywhere."""
    django_dir = Path(translation.__file__).resolve().parents[2]
    ours = {(e.msgctxt, e.msgid): e.msgstr for _, e in _entries() if e.msgstr}
    changed = []
    for po in django_dir.glob("**/locale/zh_Hans/LC_MESSAGES/django.po"):
        for entry in polib.pofile(str(po)):
            mine = ours.get((entry.msgctxt, entry.msgid))
            if mine and entry.msgstr and mine != entry.msgstr:
                changed.append(f"{entry.msgid!r}: Django {entry.msgstr!r}, ours {mine!r}")
    assert changed == []


# --- compiling ---------------------------------------------------------------------------------------------


def _copy_catalog(tmp_path, name="django.po") -> Path:
    target = tmp_path / "locale/zh_Hans/LC_MESSAGES" / name
    target.parent.mkdir(parents=True)
    shutil.copy(BASE / "orders/locale/zh_Hans/LC_MESSAGES/django.po", target)
    return target


def _read_mo(path: Path) -> dict:
    with path.open("rb") as fh:
        return dict(gnu_gettext.GNUTranslations(fh)._catalog)


def test_polib_compiles_the_same_catalog_as_msgfmt(tmp_path):
    if not translations.find_msgfmt():
        pytest.skip("GNU gettext (msgfmt) is not installed: nothing to compare polib's output with")
    po = _copy_catalog(tmp_path)
    by_msgfmt = _read_mo(translations.compile_catalog(po))
    by_polib = _read_mo(translations.compile_catalog(po, msgfmt=None))
    assert by_polib == by_msgfmt
    assert by_polib["order"] == "订单"


def test_a_translation_that_drops_a_placeholder_is_refused_in_both_ways(tmp_path):
    po = _copy_catalog(tmp_path)
    po.write_text(po.read_text() + '\nmsgid "Shipped %(n)d order(s)."\nmsgstr "已发货。"\n')
    for tool in (translations.AUTO, None):
        with pytest.raises(translations.CatalogError, match=r"%\(n\)d"):
            translations.compile_catalog(po, msgfmt=tool)
    assert not translations.mo_path(po).exists()


def test_a_catalog_with_a_msgid_twice_is_refused_in_both_ways(tmp_path):
    po = _copy_catalog(tmp_path)
    po.write_text(po.read_text() + '\nmsgid "order"\nmsgstr "订单"\n')
    for tool in (translations.AUTO, None):
        with pytest.raises(translations.CatalogError, match="order"):
            translations.compile_catalog(po, msgfmt=tool)


def test_the_command_compiles_stale_catalogs_only_and_the_check_warns_until_then(tmp_path, settings):
    po = _copy_catalog(tmp_path)
    settings.LOCALE_PATHS = [*settings.LOCALE_PATHS, str(tmp_path / "locale")]
    warnings = translations_compiled()
    assert [w.id for w in warnings] == ["common.W001"]
    assert str(translations.mo_path(po)) in warnings[0].msg

    call_command("compile_translations", "--polib", verbosity=0)
    assert _read_mo(translations.mo_path(po))["order"] == "订单"
    assert translations_compiled() == []
    assert translations.is_stale(po) is False


def test_the_command_names_a_broken_catalog_and_fails(tmp_path, settings):
    po = _copy_catalog(tmp_path)
    po.write_text(po.read_text() + '\nmsgid "%(n)d left"\nmsgstr "剩余"\n')
    settings.LOCALE_PATHS = [*settings.LOCALE_PATHS, str(tmp_path / "locale")]
    with pytest.raises(CommandError, match="剩余|%\\(n\\)d left"):
        call_command("compile_translations", verbosity=0)


def test_placeholders_are_read_like_python_reads_them():
    assert translations.placeholders("%(n)d of %(m)s, 100%% done") == ["%(m)s", "%(n)d"]
    assert translations.placeholders("{n} item(s), {{literal}}, {0:>4}") == ["{0:>4}", "{n}"]
