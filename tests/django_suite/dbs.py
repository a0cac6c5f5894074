"""Which database a Django suite run uses: $STALWART_DJANGO_DB = sqlite (default),
postgresql or mariadb; the servers' databases are the ones of the main suite
($STALWART_TEST_POSTGRES_URL, $STALWART_TEST_MYSQL_URL)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

KIND = os.environ.get("STALWART_DJANGO_DB", "sqlite")
POSTGRES_URL = os.environ.get(
    "STALWART_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/stalwart_test"
)
MYSQL_URL = os.environ.get("STALWART_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/stalwart_test")


def sqlite_path() -> str:
    path = os.environ.get("STALWART_DJANGO_SQLITE")
    if not path:
        path = str(Path(tempfile.mkdtemp(prefix="stalwart-django-")) / "db.sqlite3")
        os.environ["STALWART_DJANGO_SQLITE"] = path  # the same file for child processes
    return path


def django_database() -> dict[str, Any]:
    if KIND == "sqlite":
        path = sqlite_path()
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "TEST": {"NAME": path},
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
        }
    if KIND == "postgresql":
        url = make_url(POSTGRES_URL)
        engine = "django.db.backends.postgresql"
    elif KIND == "mariadb":
        import pymysql

        pymysql.install_as_MySQLdb()  # Django's MySQL backend on PyMySQL
        url = make_url(MYSQL_URL)
        engine = "django.db.backends.mysql"
    else:
        raise ValueError(f"STALWART_DJANGO_DB must be sqlite, postgresql or mariadb: {KIND!r}")
    return {
        "ENGINE": engine,
        "NAME": url.database,
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.host or "",
        "PORT": str(url.port or ""),
        "TEST": {"NAME": url.database},
        **({"OPTIONS": {"charset": "utf8mb4"}} if KIND == "mariadb" else {}),
    }
