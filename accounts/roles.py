"""Staff roles as Django groups. `manage.py setup_roles` (re)applies this table."""

ROLES: dict[str, dict] = {
    "operator": {
        "label": "运营",
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
        "label": "KYC 审核",
        "perms": ["orders.view_order", "orders.view_orderevent", "accounts.view_buyeridentity",
                  "accounts.view_pii",
                  # Verifications, their log and Sumsub's answers (no documents: Sumsub keeps them); re-send links
                  # (change) and override results with a written reason.
                  "kyc.view_verification", "kyc.change_verification", "kyc.override_verification",
                  "kyc.view_verificationevent", "kyc.view_kycpolicy", "kyc.view_kycapplicant",
                  "kyc.view_sumsubinboxevent", "kyc.view_buyermessage"],
    },
    "finance": {
        "label": "财务",
        "perms": ["orders.view_order", "orders.view_orderevent", "orders.view_product",
                  "accounts.view_shop", "notifications.view_delivery",
                  # payments: onboarding merchants, trades and refunds (payments app)
                  "payments.view_merchant", "payments.add_merchant", "payments.change_merchant",
                  "payments.view_facetofaceapplication", "payments.add_facetofaceapplication",
                  "payments.change_facetofaceapplication", "payments.view_alipaycall",
                  "payments.view_trade", "payments.add_trade", "payments.refund_trade", "payments.view_refund",
                  "payments.view_alipayinboxevent"],
    },
    "admin": {"label": "管理员", "perms": "__all__"},
}
