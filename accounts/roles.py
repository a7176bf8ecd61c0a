"""Staff roles as Django groups. `manage.py setup_roles` (re)applies this table.

A role's `label` is an English msgid (marked, not translated here: the table is read at import); show it with
`role_label(name)`, which translates it into the reader's language."""

from django.utils.translation import gettext, gettext_noop

ROLES: dict[str, dict] = {
    "operator": {
        "label": gettext_noop("Operator"),
        "perms": [
            "accounts.view_shop", "accounts.view_buyeridentity",
            "orders.view_order", "orders.change_order", "orders.view_orderevent",
            "orders.view_product", "orders.add_product", "orders.change_product",
            "orders.view_stockmovement", "orders.add_stockmovement", "orders.view_orderinboxevent",
            "orders.view_sandboxcall",
            "shipping.view_shipment", "shipping.change_shipment",
            "shipping.view_cardcode", "shipping.add_cardcode", "shipping.change_cardcode",
            "notifications.view_delivery",
            "kyc.view_verification", "kyc.change_verification", "kyc.view_verificationevent",
            "kyc.view_kycpolicy", "kyc.add_kycpolicy", "kyc.change_kycpolicy", "kyc.view_buyermessage",
        ],
    },
    "kyc_reviewer": {
        "label": gettext_noop("KYC reviewer"),
        "perms": ["orders.view_order", "orders.view_orderevent", "accounts.view_buyeridentity",
                  "accounts.view_pii",
                  # Verifications, their log and Sumsub's answers (no documents: Sumsub keeps them); re-send links
                  # (change) and override results with a written reason.
                  "kyc.view_verification", "kyc.change_verification", "kyc.override_verification",
                  "kyc.view_verificationevent", "kyc.view_kycpolicy", "kyc.view_kycapplicant",
                  "kyc.view_sumsubinboxevent", "kyc.view_buyermessage"],
    },
    "finance": {
        "label": gettext_noop("Finance"),
        "perms": ["orders.view_order", "orders.view_orderevent", "orders.view_product",
                  "accounts.view_shop", "notifications.view_delivery",
                  # payments: onboarding merchants, trades and refunds (payments app)
                  "payments.view_merchant", "payments.add_merchant", "payments.change_merchant",
                  "payments.view_facetofaceapplication", "payments.add_facetofaceapplication",
                  "payments.change_facetofaceapplication", "payments.view_alipaycall",
                  "payments.view_trade", "payments.add_trade", "payments.refund_trade", "payments.view_refund",
                  "payments.view_alipayinboxevent"],
    },
    "admin": {"label": gettext_noop("Administrator"), "perms": "__all__"},
}


def role_label(name: str) -> str:
    """A role's label in the reader's language (the group's name itself for a group that is not a role)."""
    spec = ROLES.get(name)
    return gettext(spec["label"]) if spec else name
