from django.urls import path

from . import views

app_name = "shipping"

urlpatterns = [
    path("delivery/<str:token>/", views.delivery, name="delivery"),
]
