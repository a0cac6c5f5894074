"""No tables of ours here (Stalwart's tables are `manage.py stalwart migrate`'s): only
the permission that lets a staff user act in the dashboard."""

from __future__ import annotations

from django.db import models


class Dashboard(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("act_on_jobs", "Can retry, discard, cancel and pause in Stalwart")]
