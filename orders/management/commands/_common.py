from django.core.management.base import CommandError

from accounts.models import Shop


def shop_by_ref(ref: str) -> Shop:
    """A shop by id, app key or exact name."""
    qs = Shop.objects.all()
    shop = None
    if ref.isdigit():
        shop = qs.filter(pk=int(ref)).first()
    shop = shop or qs.filter(app_key=ref).first() or qs.filter(name=ref).first()
    if shop is None:
        raise CommandError(f"no shop matches {ref!r} (give its id, app key or name)")
    return shop
