from django.db import models


class Order(models.Model):
    item = models.CharField(max_length=200)
    confirmed_by_job = models.CharField(max_length=40, blank=True)
