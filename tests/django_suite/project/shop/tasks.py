from django.db import transaction

try:
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task

from stalwart import Retry

from .models import Order


@task(queue_name="mail", takes_context=True, retry=Retry(attempts=3, base=0.1))
def confirm_order(context, order_id):
    """A job that uses the ORM; it can rely on the order existing: it was committed
    together with the job."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        order.confirmed_by_job = context.task_result.id
        order.save()
    return order.item
