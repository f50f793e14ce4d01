"""The fast event decoder (schemas/event.py) and the JSON Schema accept exactly the same documents.

Checked on a hand-written corpus of edge cases and on documents hypothesis builds from valid and
broken field values; plus the decoder's own promises: reasons, times, an encode/decode round trip.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import schemas
from schemas.event import (
    EVENT_TYPES,
    MAX_TS_MS,
    Event,
    EventError,
    decode_event,
    encode_event,
    format_timestamp,
    parse_timestamp,
)

BASE: dict[str, Any] = {
    "event_id": "e-1",
    "user_id": "u-1",
    "event_type": "view",
    "timestamp": "2026-01-02T03:04:05Z",
}


def schema_accepts(doc: Any) -> bool:
    try:
        schemas.validate("clickstream_event", doc)
    except schemas.SchemaError:
        return False
    return True


def decoder_accepts(raw: bytes) -> bool:
    try:
        decode_event(raw)
    except EventError:
        return False
    return True


def assert_agree(doc: Any) -> None:
    raw = json.dumps(doc, allow_nan=False).encode()
    by_schema, by_decoder = schema_accepts(doc), decoder_accepts(raw)
    assert by_schema == by_decoder, f"schema {by_schema}, decoder {by_decoder}: {raw[:300]!r}"


def with_field(**fields: Any) -> dict[str, Any]:
    doc = dict(BASE)
    for key, value in fields.items():
        if value is _MISSING:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_MISSING = object()

TIMESTAMPS = [
    0,
    MAX_TS_MS,
    MAX_TS_MS + 1,
    -1,
    1767323045000.0,  # an integer-valued float is an integer to JSON Schema
    1767323045000.5,
    1e300,
    10**20,
    True,
    None,
    "2026-01-02T03:04:05Z",
    "2026-01-02t03:04:05z",
    "2026-01-02 03:04:05Z",
    "2026-01-02T03:04:05.123456789+14:00",
    "2026-01-02T03:04:05-00:00",
    "2026-01-02T03:04:05+23:59",
    "2026-01-02T03:04:05+24:00",
    "2026-01-02T03:04:05+01:60",
    "2026-01-02T03:04:05",
    "2026-01-02",
    "2026-02-29T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-02T24:00:00Z",
    "2026-01-02T23:60:00Z",
    "2016-12-31T23:59:60Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-01-02T03:04:05Z\n",
    "\n2026-01-02T03:04:05Z",
    " 2026-01-02T03:04:05Z",
    "２０２６-01-02T03:04:05Z",  # full-width digits
    "2026-01-02T03:04:05.Z",
    "1767323045000",
    "",
]

CORPUS: list[Any] = [
    BASE,
    [BASE],
    "view",
    None,
    42,
    {},
    *(with_field(timestamp=ts) for ts in TIMESTAMPS),
    *(with_field(event_type=t) for t in [*EVENT_TYPES, "View", "buy", "", None, 1]),
    *(with_field(user_id=u) for u in ["", "x" * 256, "x" * 257, "🛒" * 256, "🛒" * 257, None, 7]),
    *(with_field(event_id=e) for e in ["", "e", None, _MISSING, ["e"]]),
    *(
        with_field(user_id=_MISSING),
        with_field(event_type=_MISSING),
        with_field(timestamp=_MISSING),
    ),
    *(with_field(price=p) for p in [0, 0.0, 59.9, 1e9, 1e9 + 1, -0.01, "1", True, None, 10**30]),
    *(with_field(quantity=q) for q in [0, 1, 2.0, 2.5, -1, 1_000_000, 1_000_001, True, None, "1"]),
    *(with_field(session_id=s) for s in [None, "", "s" * 256, "s" * 257, 5, {"a": 1}]),
    *(with_field(item_id=s) for s in [None, "", "i" * 257, 5.5]),
    *(with_field(category_id=s) for s in [None, "c", "c" * 257, False]),
    with_field(extra={"nested": [1, 2]}, another=None),
]


@pytest.mark.parametrize("doc", CORPUS, ids=lambda d: json.dumps(d)[:60])
def test_decoder_and_schema_agree_on_the_corpus(doc: Any) -> None:
    assert_agree(doc)


# Hypothesis: each field drawn from a mix of valid values, near-misses and wrong types.
_text = st.text(max_size=6)
_ids = st.one_of(_text, st.text(min_size=254, max_size=258), st.none(), st.integers())
_opt_str = st.one_of(st.none(), _text, st.text(min_size=255, max_size=258), st.integers())
_rfc3339 = st.builds(
    lambda y, mo, d, h, mi, s, frac, sep, tz: (
        f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{tz}"
    ),
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["", ".5", ".123", ".123456789", "."]),
    st.sampled_from(["T", "t", " ", "_"]),
    st.one_of(
        st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "UTC"]),
        st.builds(
            lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
            st.sampled_from("+-"),
            st.integers(0, 25),
            st.integers(0, 61),
        ),
    ),
)
_timestamps = st.one_of(
    _rfc3339,
    st.integers(-(10**3), 10**3),
    st.integers(MAX_TS_MS - 10, MAX_TS_MS + 10),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, MAX_TS_MS).map(float),
    st.text(max_size=25),
    st.booleans(),
    st.none(),
)
_numbers = st.one_of(
    st.integers(-5, 5),
    st.integers(999_995, 1_000_005),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-2, 2).map(lambda f: round(f, 1)),
    st.just(1e9),
    st.booleans(),
    st.none(),
    _text,
)
_FIELDS = {
    "event_id": _ids,
    "user_id": _ids,
    "event_type": st.one_of(st.sampled_from(EVENT_TYPES), _text, st.none()),
    "timestamp": _timestamps,
    "session_id": _opt_str,
    "item_id": _opt_str,
    "category_id": _opt_str,
    "price": _numbers,
    "quantity": _numbers,
}
_REQUIRED = ("event_id", "user_id", "event_type", "timestamp")


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name, values in _FIELDS.items():
        # Required fields are mostly present and optional ones often absent, so valid documents
        # are common enough for both sides of the boundary to be explored.
        present = draw(st.integers(0, 9)) < (9 if name in _REQUIRED else 5)
        if present:
            valid = draw(st.integers(0, 9)) < 8
            doc[name] = draw(_valid_value(name) if valid else values)
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["x", "extra", "Event_ID"]))] = draw(st.one_of(_text, st.none()))
    return doc


def _valid_value(name: str) -> st.SearchStrategy[Any]:
    return {
        "event_id": st.text(min_size=1, max_size=8),
        "user_id": st.text(min_size=1, max_size=8),
        "event_type": st.sampled_from(EVENT_TYPES),
        "timestamp": st.one_of(
            st.integers(0, MAX_TS_MS),
            st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        ),
        "session_id": st.one_of(st.none(), st.text(max_size=8)),
        "item_id": st.one_of(st.none(), st.text(max_size=8)),
        "category_id": st.one_of(st.none(), st.text(max_size=8)),
        "price": st.one_of(st.none(), st.floats(0, 1e9), st.integers(0, 10**9)),
        "quantity": st.one_of(st.none(), st.integers(0, 1_000_000)),
    }[name]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
@example(with_field(timestamp="2026-01-02 03:04:05Z"))
@example(with_field(quantity=3.0))
def test_decoder_and_schema_agree_on_generated_documents(doc: dict[str, Any]) -> None:
    assert_agree(doc)


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        Event,
        event_id=st.text(min_size=1, max_size=20),
        user_id=st.text(min_size=1, max_size=20),
        event_type=st.sampled_from(EVENT_TYPES),
        ts_ms=st.integers(0, MAX_TS_MS),
        session_id=st.one_of(st.none(), st.text(max_size=20)),
        item_id=st.one_of(st.none(), st.text(max_size=20)),
        category_id=st.one_of(st.none(), st.text(max_size=20)),
        price=st.one_of(st.none(), st.floats(0, 1e9)),
        quantity=st.one_of(st.none(), st.integers(0, 1_000_000)),
    )
)
def test_encode_then_decode_gives_the_same_event(event: Event) -> None:
    raw = encode_event(event)
    schemas.validate("clickstream_event", json.loads(raw))
    assert decode_event(raw) == event


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 253402300799999))  # up to 9999-12-31T23:59:59.999Z
def test_format_then_parse_timestamp_is_the_identity(ts_ms: int) -> None:
    assert parse_timestamp(format_timestamp(ts_ms)) == ts_ms


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not_json"),
        (b"{", "not_json"),
        (b'{"event_id": "e"}x', "not_json"),
        (b"\xff\xfe{}", "not_utf8"),
        (b'{"event_id": "\xc3("}', "not_utf8"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"null", "not_object"),
        (json.dumps(with_field(user_id=_MISSING)).encode(), "schema"),
        (json.dumps(with_field(timestamp="yesterday")).encode(), "bad_timestamp"),
        (json.dumps(with_field(timestamp=[1])).encode(), "bad_timestamp"),
        (json.dumps(with_field(event_type="buy")).encode(), "unknown_event_type"),
    ],
)
def test_rejections_carry_their_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        decode_event(raw)
    assert caught.value.reason == reason
    assert caught.value.detail


def test_size_limit_comes_before_parsing() -> None:
    raw = json.dumps(with_field(padding="x" * 100)).encode()
    assert decode_event(raw, max_bytes=len(raw)).user_id == "u-1"
    with pytest.raises(EventError) as caught:
        decode_event(raw, max_bytes=len(raw) - 1)
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize(
    ("stamp", "ts_ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-01-02T03:04:05Z", 1767323045000),
        ("2026-01-02T05:04:05.250+02:00", 1767323045250),
        ("2026-01-01T22:04:05.999-05:00", 1767323045999),
        ("2026-01-02t03:04:05.1z", 1767323045100),
        (1767323045123, 1767323045123),
    ],
)
def test_times_become_epoch_milliseconds(stamp: str | int, ts_ms: int) -> None:
    assert decode_event(json.dumps(with_field(timestamp=stamp)).encode()).ts_ms == ts_ms


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b"[" * 3000 + b"]" * 3000,
        b'{"event_id":"e","user_id":"u","event_type":"view","timestamp":1,"x":'
        + b"[" * 3000
        + b"]" * 3000
        + b"}",
    ],
    ids=["objects", "arrays", "extra-field"],
)
def test_deep_nesting_is_an_event_error_for_every_caller(raw: bytes) -> None:
    """RecursionError escaped decode_event; only the worker's own loop caught it."""
    with pytest.raises(EventError) as err:
        decode_event(raw)
    assert err.value.reason == "not_json"
