from __future__ import annotations

from datetime import datetime

from django.db import transaction

from .models import BuyerIdentity, Platform, Shop


@transaction.atomic
def shop_upsert(*, platform: str, name: str, app_key: str, app_secret: str, session_token: str | None = None,
                session_expires_at: datetime | None = None, seller_id: str | None = None) -> tuple[Shop, bool]:
    """Create a shop or update the one with the same platform and app key."""
    if platform not in Platform.values:
        raise ValueError(f"unknown platform {platform!r}; choose from {', '.join(Platform.values)}")
    if not app_key or not app_secret:
        raise ValueError("app key and app secret are required")
    shop = Shop.objects.select_for_update().filter(platform=platform, app_key=app_key).first()
    created = shop is None
    shop = shop or Shop(platform=platform, app_key=app_key)
    shop.name = name
    shop.app_secret = app_secret
    if session_token is not None:
        shop.session_token = session_token
        shop.session_expires_at = session_expires_at
    if seller_id is not None:
        shop.seller_id = seller_id
    shop.save()
    return shop, created


def buyer_upsert(*, platform: str, platform_user_id: str, nick: str = "", phone: str = "",
                 email: str = "") -> BuyerIdentity:
    buyer, created = BuyerIdentity.objects.get_or_create(
        platform=platform, platform_user_id=platform_user_id, defaults={"nick": nick, "phone": phone, "email": email})
    changed = []
    for name, value in (("nick", nick), ("phone", phone), ("email", email)):
        if value and getattr(buyer, name) != value:
            setattr(buyer, name, value)
            changed.append(name)
    if changed and not created:
        buyer.save(update_fields=[*changed, "updated_at"])
    return buyer


def login_lockout_clear(*, attempts) -> int:
    """Clear django-axes login lockouts: the given AccessAttempt rows (a queryset) go, so their address may
    log in again at once. Returns how many were cleared."""
    count, _ = attempts.delete()
    return count
