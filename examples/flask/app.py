"""A Flask + Flask-SQLAlchemy app whose jobs commit or roll back with its rows.

    pip install 'stalwart' flask flask-sqlalchemy
    export STALWART_DATABASE_URL=sqlite:///$PWD/flask-demo.db
    stalwart migrate && flask --app app init-db
    flask --app app run                  # the web app
    STALWART_APP=app:jobs stalwart start # the workers, beside it

POST /orders {"item": ...} writes an order and enqueues its confirmation in the same
transaction (``connection=db.session.connection()``); with "fail": true the request
fails after the enqueue, the transaction rolls back, and neither the order nor its job
exists. The job itself uses the ORM, in an app context of its own.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

import stalwart

DATABASE_URL = os.environ.get("STALWART_DATABASE_URL", "sqlite:///flask-demo.db")


def sqlalchemy_url(url: str) -> str:
    """The same database with the drivers Stalwart uses (psycopg 3, PyMySQL)."""
    for plain, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("mysql://", "mysql+pymysql://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


web = Flask(__name__)
web.config["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(DATABASE_URL)
db = SQLAlchemy(web)
jobs = stalwart.App(DATABASE_URL)


class Order(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "flask_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(200))
    confirmed: Mapped[bool] = mapped_column(default=False)


@jobs.task(retry=stalwart.Retry(attempts=3))
def confirm_order(order_id: int) -> str:
    with web.app_context():
        order = db.session.get(Order, order_id)
        if order is None:  # cannot happen: the job commits with its order
            raise LookupError(f"order {order_id} is missing")
        order.confirmed = True
        db.session.commit()
        return f"confirmed {order.item}"


@jobs.on_job_end
def _remove_session(_job: stalwart.JobInfo) -> None:
    with web.app_context():
        db.session.remove()  # nothing of one job's session reaches the next


@web.post("/orders")
def create_order():  # type: ignore[no-untyped-def]
    body = request.get_json()
    order = Order(item=body["item"])
    db.session.add(order)
    db.session.flush()  # the order's id, in this transaction
    job = jobs.enqueue(confirm_order, [order.id], connection=db.session.connection())
    if body.get("fail"):
        db.session.rollback()  # as a failing request would: the job goes with the order
        return jsonify(error="failed after enqueue", job_id=job.id), 500
    db.session.commit()
    return jsonify(order_id=order.id, job_id=job.id), 201


@web.get("/orders/<int:order_id>")
def show_order(order_id: int):  # type: ignore[no-untyped-def]
    order = db.session.get(Order, order_id)
    if order is None:
        return jsonify(error="no such order"), 404
    return jsonify(item=order.item, confirmed=order.confirmed)


@web.cli.command("init-db")
def init_db() -> None:
    db.create_all()
