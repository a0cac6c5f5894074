"""JSON encoding of arguments, results and captured context.

Only JSON types are accepted: nothing is ever pickled, so a job row can never run code
when it is read. Errors name the offending value by its path (``args[1]``,
``kwargs['user']['tags'][2]``) and its type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from json.scanner import make_scanner
from typing import Any

from .errors import SerializationError

JSONValue = Any  # a value made of dict/list/str/int/float/bool/None

_SCALARS = (str, int, float, bool, type(None))


def check_json(value: object, where: str) -> None:
    """Raise SerializationError naming ``where`` if ``value`` is not plain JSON."""
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _SCALARS):
            if isinstance(item, float) and item != item:  # NaN is not JSON
                raise SerializationError(f"{path} is NaN, which is not valid JSON")
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise SerializationError(
                        f"{path} has a key {k!r} of type {type(k).__name__}; "
                        "JSON object keys must be str"
                    )
                stack.append((v, f"{path}[{k!r}]"))
        else:
            raise SerializationError(
                f"{path} is of type {type(item).__module__}.{type(item).__qualname__}, "
                "which is not JSON; pass str, int, float, bool, None, list or dict "
                "(for example an id instead of an object)"
            )


_FLAT = frozenset((str, int, bool, type(None)))


def dump_arguments(args: Sequence[object], kwargs: Mapping[str, object]) -> tuple[str, str]:
    """Check and encode a call's arguments as two JSON texts."""
    for i, value in enumerate(args):
        # Most arguments are ids and strings: skip the walk for those.
        if type(value) not in _FLAT:
            check_json(value, f"argument args[{i}]")
    for key, value in kwargs.items():
        if type(value) not in _FLAT:
            check_json(value, f"argument {key!r}")
    return (dumps(list(args)) if args else "[]"), (dumps(dict(kwargs)) if kwargs else "{}")


# One encoder for all: json.dumps with options builds a new one on every call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


# typeshed types the C scanner's constructor oddly; it takes the decoder as context.
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def dumps(value: JSONValue) -> str:
    return _encode(value)


def loads(text: str | None) -> JSONValue:
    if text is None:
        return None
    # Most jobs have no keyword arguments (or no arguments): skip the decoder for them.
    if text == "{}":
        return {}
    if text == "[]":
        return []
    # The C scanner alone: json.loads adds a Python-level wrapper and two regex
    # matches, most of the cost for the short texts arguments are. Anything it does
    # not read to the end (whitespace around, bad JSON) goes to json.loads.
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the decoder's own error
    return value if end == len(text) else json.loads(text)
