from django.http import JsonResponse


def xianguanjia(request):
    return JsonResponse({"result": "success"})


def goofish(request):
    return JsonResponse({"result": "success"})
