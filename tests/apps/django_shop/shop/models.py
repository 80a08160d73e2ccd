"""A shop with planted defects: the columns the views filter on have no index."""

from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200)  # filtered on, not indexed
    city = models.CharField(max_length=100)  # filtered on, not indexed


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    status = models.CharField(max_length=20)  # filtered on, not indexed
    total = models.IntegerField()
