from django.urls import path

from . import views

app_name = "kyc"

urlpatterns = [
    path("verify/<str:token>/", views.verify_page, name="verify"),
    path("verify/<str:token>/token/", views.verify_token, name="token"),
    path("verify/<str:token>/status/", views.verify_status, name="status"),
    path("verify/<str:token>/sandbox/", views.verify_sandbox, name="sandbox"),
]
