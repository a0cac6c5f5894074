"""JSON encoding of arguments, results and captured context.

Only JSON types are accepted: nothing is ever pickled, so a job row can never run code
when it is read. Errors name the offending value by its path (``args[1]``,
``kwargs['user']['tags'][2]``) and its type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from json.scanner import make_scanner
from typing import Any

from .errors import SerializationError

JSONValue = Any  # a value made of dict/list/str/int/float/bool/None

_SCALARS = (str, int, float, bool, type(None))


# Deeper than this is refused: a reference cycle (a list inside itself) would otherwise
# be walked for ever.
MAX_DEPTH = 500


def check_json(value: object, where: str) -> None:
    """Raise SerializationError naming ``where`` if ``value`` is not plain JSON."""
    stack: list[tuple[object, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, _SCALARS):
            if isinstance(item, float) and item != item:  # NaN is not JSON
                raise SerializationError(f"{path} is NaN, which is not valid JSON")
            continue
        if depth >= MAX_DEPTH and isinstance(item, (list, tuple, dict)):
            raise SerializationError(
                f"{where} is nested more than {MAX_DEPTH} levels deep (does it contain "
                "itself?), which is not stored"
            )
        if isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise SerializationError(
                        f"{path} has a key {k!r} of type {type(k).__name__}; "
                        "JSON object keys must be str"
                    )
                stack.append((v, f"{path}[{k!r}]", depth + 1))
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


def _not_json(value: object) -> object:
    raise TypeError(f"{type(value).__qualname__} is not JSON")


# One encoder for all, built once. json.dumps with options builds a JSONEncoder per
# call, and JSONEncoder.encode builds a C encoder per call: for the short texts of
# arguments and results, that was three quarters of the cost. No cycle check (markers
# None): every value from outside has passed check_json, which stops at MAX_DEPTH.
_c_encoder = (
    c_make_encoder(None, _not_json, encode_basestring, None, ":", ",", False, False, False)
    if c_make_encoder is not None
    else None
)
_py_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _encode(value: JSONValue) -> str:
    if _c_encoder is None:  # an interpreter without the C accelerator
        return _py_encode(value)
    return "".join(_c_encoder(value, 0))


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
