from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView

from common.failures import failures_view
from common.i18n import buyer_page
from common.views import healthz
from kyc import webhooks as kyc_webhooks
from kyc.miniapp import MiniappOrderView
from orders import webhooks as order_webhooks
from payments import webhooks as payment_webhooks

admin.site.site_header = _("Xianyu operations")
admin.site.site_title = "xianyu-ops"
admin.site.index_title = _("Workbench")

urlpatterns = [
    # Failures in one place (common.failures); before admin/ so that the admin's catch-all does not take it.
    path("admin/failures/", admin.site.admin_view(failures_view), name="admin-failures"),
    path("admin/", admin.site.urls),
    # The language switch posts here (`set_language`; templates/includes/language_switch.html).
    path("i18n/", include("django.conf.urls.i18n")),
    path("webhooks/xianguanjia/", order_webhooks.xianguanjia, name="webhook-xianguanjia"),
    path("webhooks/goofish/", order_webhooks.goofish, name="webhook-goofish"),
    path("webhooks/sumsub/", kyc_webhooks.sumsub_webhook, name="webhook-sumsub"),
    path("webhooks/alipay/", payment_webhooks.alipay, name="webhook-alipay"),
    path("", include("shipping.urls")),
    path("", include("kyc.urls")),
    path("healthz/", healthz, name="healthz"),
    path("api/v1/miniapp/orders/", buyer_page(MiniappOrderView.as_view()), name="miniapp-orders"),
    path("api/v1/", include("orders.api")),
    path("api/v1/", include("payments.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]

if getattr(settings, "BENCH_BARE_ENDPOINT", False):
    # Only for bench/ingest: the baseline endpoint the webhook's throughput is compared with.
    from bench.ingest.bare import bare_view

    urlpatterns.append(path("bench/bare/", bare_view, name="bench-bare"))
