import json

from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import Order
from .tasks import confirm_order


@csrf_exempt
def create_order(request):
    body = json.loads(request.body)
    try:
        with transaction.atomic():
            order = Order.objects.create(item=body["item"])
            result = confirm_order.enqueue(order.pk)
            if body.get("fail"):
                raise RuntimeError("payment refused")
    except RuntimeError:
        return JsonResponse({"error": "payment refused", "job_id": result.id}, status=402)
    return JsonResponse({"order_id": order.pk, "job_id": result.id}, status=201)


def show_order(request, order_id):
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return JsonResponse({"error": "no such order"}, status=404)
    return JsonResponse({"item": order.item, "confirmed_by_job": order.confirmed_by_job})
