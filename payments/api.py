"""REST API for the finance role (seed 001's endpoints), under `/api/v1/facetoface/`, in the OpenAPI schema:

- `POST /api/v1/facetoface/apply/` — a new application (multipart, with its pictures), submitted at once
  unless `submit=false`;
- `GET /api/v1/facetoface/` — the list, paged, filtered by `status`, `attention`, `merchant` and `q`
  (merchant or shop name);
- `GET /api/v1/facetoface/{id}/` — one application with its Alipay answers;
- `POST /api/v1/facetoface/{id}/query/` — query Alipay now (or carry on a submission).

Staff session authentication; permissions are the model permissions the finance role holds."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from common.admin_mixins import can_view_pii
from common.fields import mask

from . import selectors
from .models import PICTURE_FIELDS, AlipayCall, ApplicationStatus, FacetofaceApplication
from .services.base import PaymentsError
from .services.merchants import merchant_upsert
from .services.onboarding import application_create, application_run_now, application_submit

PERMS = {"list": "view", "retrieve": "view", "apply": "add", "query": "change"}


class ApplicationPermission(BasePermission):
    def has_permission(self, request, view):
        verb = PERMS.get(getattr(view, "action", ""), "view")
        return request.user.has_perm(f"payments.{verb}_facetofaceapplication")


class AlipayCallSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlipayCall
        fields = ["method", "outcome", "code", "sub_code", "message", "answer", "created_at"]


class ApplicationSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    merchant_id = serializers.IntegerField(read_only=True)
    business_license_mobile = serializers.SerializerMethodField()
    next_query_at = serializers.DateTimeField(source="due_at", read_only=True)

    class Meta:
        model = FacetofaceApplication
        fields = ["id", "merchant_id", "merchant_name", "shop_name", "province_code", "city_code", "district_code",
                  "shop_address", "longitude", "latitude", "mcc_code", "rate", "sign_and_auth", "business_license_no",
                  "business_license_mobile", "date_limitation", "long_term", "status", "status_display",
                  "alipay_status", "batch_no", "order_no", "confirm_url", "reject_reason", "remark", "last_error",
                  "needs_attention", "attention_reason", "submitted_at", "last_query_at", "next_query_at",
                  "query_count", "created_at"]
        read_only_fields = fields

    def get_business_license_mobile(self, obj) -> str:
        request = self.context.get("request")
        return obj.business_license_mobile if can_view_pii(request) else mask(obj.business_license_mobile)


class ApplicationDetailSerializer(ApplicationSerializer):
    alipay_calls = serializers.SerializerMethodField()

    class Meta(ApplicationSerializer.Meta):
        fields = [*ApplicationSerializer.Meta.fields, "alipay_calls"]
        read_only_fields = fields

    @extend_schema_field(AlipayCallSerializer(many=True))
    def get_alipay_calls(self, obj) -> list[dict]:
        return AlipayCallSerializer(selectors.application_calls(obj), many=True).data


class ApplySerializer(serializers.Serializer):
    merchant_name = serializers.CharField(max_length=128)
    alipay_account = serializers.CharField(max_length=100)
    contact_name = serializers.CharField(max_length=64)
    contact_mobile = serializers.CharField(max_length=11, required=False, allow_blank=True)
    contact_email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    shop_name = serializers.CharField(max_length=128)
    province_code = serializers.CharField(max_length=12)
    city_code = serializers.CharField(max_length=12)
    district_code = serializers.CharField(max_length=12)
    shop_address = serializers.CharField(max_length=256)
    longitude = serializers.CharField(max_length=16, required=False, allow_blank=True)
    latitude = serializers.CharField(max_length=16, required=False, allow_blank=True)
    mcc_code = serializers.CharField(max_length=32)
    rate = serializers.DecimalField(max_digits=4, decimal_places=2, required=False, allow_null=True)
    sign_and_auth = serializers.BooleanField(default=True)
    business_license_no = serializers.CharField(max_length=64, required=False, allow_blank=True)
    business_license_mobile = serializers.CharField(max_length=11, required=False, allow_blank=True)
    date_limitation = serializers.DateField(required=False, allow_null=True)
    long_term = serializers.BooleanField(default=False)
    remark = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    business_license_pic = serializers.FileField(required=False)
    business_license_auth_pic = serializers.FileField(required=False)
    shop_scene_pic = serializers.FileField()
    shop_sign_board_pic = serializers.FileField()
    special_license_pic = serializers.FileField(required=False)
    submit = serializers.BooleanField(default=True, help_text="Submit to Alipay at once (default).")


def _drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})


class ApplicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdminUser, ApplicationPermission]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ApplicationDetailSerializer
        if self.action == "apply":
            return ApplySerializer
        return ApplicationSerializer

    def get_queryset(self):
        if self.action != "list":
            return FacetofaceApplication.objects.all()
        params = self.request.query_params
        status_ = params.get("status") or None
        if status_ is not None and status_ not in ApplicationStatus.values:
            raise ValidationError(
                {"status": _("Choose from %(values)s") % {"values": ", ".join(ApplicationStatus.values)}})
        attention = {"true": True, "1": True, "false": False, "0": False, None: None, "": None}.get(
            params.get("attention"), "bad")
        if attention == "bad":
            raise ValidationError({"attention": _("true or false")})
        merchant = params.get("merchant") or ""
        if merchant and (not merchant.isdigit() or len(merchant) > 18):
            raise ValidationError({"merchant": _("a merchant id")})
        q = (params.get("q") or "").strip()
        if len(q) > 100 or "\x00" in q:
            raise ValidationError({"q": _("at most 100 characters")})
        return selectors.applications(status=status_, attention=attention, merchant_id=int(merchant) if merchant
                                      else None, q=q)

    @extend_schema(parameters=[
        OpenApiParameter("status", OpenApiTypes.STR, enum=ApplicationStatus.values),
        OpenApiParameter("attention", OpenApiTypes.BOOL, description="only applications that need attention"),
        OpenApiParameter("merchant", OpenApiTypes.INT), OpenApiParameter("q", OpenApiTypes.STR,
                                                                         description="merchant or shop name contains")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": ApplySerializer}, responses={201: ApplicationDetailSerializer})
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser, JSONParser])
    def apply(self, request):
        data = ApplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        submit = v.pop("submit")
        merchant_fields = {"name": v.pop("merchant_name"), "alipay_account": v.pop("alipay_account"),
                           "contact_name": v.pop("contact_name"), "contact_mobile": v.pop("contact_mobile", ""),
                           "contact_email": v.pop("contact_email", "")}
        try:
            with transaction.atomic():
                merchant = merchant_upsert(**merchant_fields)
                app = application_create(merchant=merchant, user=request.user,
                                         **{k: v[k] for k in v if k not in PICTURE_FIELDS},
                                         **{k: v[k] for k in PICTURE_FIELDS if k in v})
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        if submit:
            try:
                app = application_submit(application_id=app.pk)
            except PaymentsError as exc:
                raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        body = ApplicationDetailSerializer(app, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApplicationDetailSerializer})
    @action(detail=True, methods=["post"])
    def query(self, request, pk=None):
        if not str(pk).isdigit() or len(str(pk)) > 18:
            raise NotFound()
        if not FacetofaceApplication.objects.filter(pk=int(pk)).exists():
            raise NotFound()
        try:
            app = application_run_now(application_id=int(pk))
        except PaymentsError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(ApplicationDetailSerializer(app, context={"request": request}).data)

    def get_object(self):
        pk = self.kwargs.get("pk", "")
        if not str(pk).isdigit() or len(str(pk)) > 18:
            raise NotFound()
        return super().get_object()


router = DefaultRouter()
router.register("facetoface", ApplicationViewSet, basename="facetoface")
urlpatterns = router.urls
