"""A shop with planted defects: the columns the views filter on have no index, and the index Django makes
for OrderLine.order is a prefix of its unique_together (redundant)."""

from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200)  # filtered on, not indexed
    city = models.CharField(max_length=100)  # filtered on, not indexed


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    status = models.CharField(max_length=20)  # filtered on, not indexed
    total = models.IntegerField()


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE)  # Django indexes it: a prefix of the unique below
    sku = models.CharField(max_length=20)

    class Meta:
        unique_together = [("order", "sku")]
