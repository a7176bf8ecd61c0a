from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse

from .health import check_health


def healthz(request):
    report = check_health()
    return JsonResponse(report, status=200 if report["ok"] else 503, encoder=DjangoJSONEncoder)
