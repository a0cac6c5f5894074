from stalwart.contrib.django import stalwart_backend
from stalwart.testing import drain

from . import tasks


def test_enqueue_and_run():
    result = tasks.calculate_meaning_of_life.enqueue()
    assert result.status == "READY"
    drain(stalwart_backend().app)
    result.refresh()
    assert result.status == "SUCCESSFUL", result.errors
    assert result.return_value == 42
