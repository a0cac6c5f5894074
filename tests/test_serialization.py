"""The JSON texts of arguments and results read back exactly, whichever decoder path
`loads` takes (the C scanner alone, or json.loads for anything it does not finish)."""

from __future__ import annotations

import json

import pytest

from stalwart.errors import SerializationError
from stalwart.serialization import MAX_DEPTH, check_json, dump_arguments, dumps, loads


@pytest.mark.parametrize(
    "value",
    [[], {}, [1], [1.5, "é", None, True], {"a": [1, {"b": "x\ny"}]}, ["\u2603", -0.0], "s"],
)
def test_what_dumps_writes_loads_reads_back(value: object) -> None:
    assert loads(json.dumps(value)) == value
    assert loads(json.dumps(value, separators=(",", ":"), ensure_ascii=False)) == value


def test_texts_written_elsewhere_with_whitespace_read_too() -> None:
    # Rows written by hand or by another client: spaces around and inside.
    assert loads(" [1, 2] ") == [1, 2]
    assert loads('\n{"a" : 1}\n') == {"a": 1}
    assert loads(None) is None


@pytest.mark.parametrize(("text", "where"), [("[1", "char 2"), ("[1] x", "char 4"), ("", "char 0")])
def test_bad_json_raises_the_decoders_own_error(text: str, where: str) -> None:
    with pytest.raises(json.JSONDecodeError, match=where):
        loads(text)


def test_arguments_round_trip() -> None:
    args, kwargs = dump_arguments((1, "two", [3]), {"four": {"5": 6}})
    assert (loads(args), loads(kwargs)) == ([1, "two", [3]], {"four": {"5": 6}})


@pytest.mark.parametrize(
    "value",
    [[], {}, [1], [1.5, "é", None, True], {"a": [1, {"b": "x\ny"}]}, ["\u2603", -0.0], "s", 7],
)
def test_dumps_writes_what_the_standard_encoder_writes(value: object) -> None:
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_what_dumps_refuses() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        dumps([float("nan")])
    with pytest.raises(TypeError, match="set is not JSON"):
        dumps({"a": {1, 2}})


def test_a_value_that_contains_itself_is_refused_not_walked_for_ever() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(SerializationError, match="nested more than 500 levels deep"):
        check_json(loop, "argument args[0]")
    with pytest.raises(SerializationError, match="args\\[0\\] is nested"):
        dump_arguments((loop,), {})
    deep: list[object] = []
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    check_json(deep, "fine")  # deep but finite, under the limit
