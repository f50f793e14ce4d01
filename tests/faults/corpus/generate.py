"""Writes hostile.jsonl: a fixed, seeded mix of good and hostile Kafka records (run once, commit).

    .venv/bin/python tests/faults/corpus/generate.py

Each line is one record to produce, in order: ``key_b64`` / ``value_b64`` (null = no key / a
tombstone), ``expect`` (what the worker must do with it, known by construction, never by asking
the worker's own decoder) and ``case`` (a short name for failure messages). ``expect`` is
``scored``, ``duplicate``, ``rekeyed`` (its re-keyed copy is then scored) or ``dead:<reason>``
(``dead:*`` for random bytes, whose reason depends on where the noise breaks the parse).
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
USERS = [f"cu{i}" for i in range(8)]
TYPES = ["view", "search", "click", "add_to_cart", "wishlist", "checkout", "purchase"]


def _event(event_id: str, user: str, ts: Any, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "event_type": "view", "timestamp": ts, **extra}


def _json(doc: Any) -> bytes:
    # allow_nan: json.dumps writes NaN / Infinity literals, which are not JSON (a hostile input).
    return json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8")


def build(seed: int = 20260101) -> list[tuple[bytes | None, bytes | None, str, str]]:
    """(key, value, expect, case) in production order."""
    rng = random.Random(seed)
    good: list[tuple[bytes | None, bytes | None, str, str]] = []
    clock = {u: T0_MS for u in USERS}
    for i in range(90):
        user = rng.choice(USERS)
        clock[user] += rng.randrange(1_000, 600_000)
        doc = _event(f"c{i}", user, clock[user], event_type=rng.choice(TYPES))
        if rng.random() < 0.5:
            doc |= {"item_id": f"i{rng.randrange(30)}", "price": round(rng.uniform(1, 300), 2)}
        good.append((user.encode(), _json(doc), "scored", "good"))

    hostile: list[tuple[bytes | None, bytes | None, str, str]] = []

    def add(key: bytes | None, value: bytes | None, expect: str, case: str) -> None:
        hostile.append((key, value, expect, case))

    u = b"cu0"
    # Not JSON / not an object / not UTF-8.
    for _ in range(12):
        add(u, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), "dead:*", "bytes")
    add(u, b"", "dead:not_json", "empty value")
    add(u, None, "dead:not_json", "tombstone (null value)")
    add(u, b"null", "dead:not_object", "json null")
    add(u, b"[1, 2, 3]", "dead:not_object", "json array")
    add(u, b'"a string"', "dead:not_object", "json string")
    add(u, b'{"a":' * 3000 + b"1" + b"}" * 3000, "dead:not_json", "objects nested 3000 deep")
    add(u, b"[" * 3000 + b"]" * 3000, "dead:not_json", "arrays nested 3000 deep")
    nested = _json(_event("n1", "cu0", T0_MS))[:-1] + b', "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    add(u, nested, "dead:not_json", "valid event with a 2000-deep extra field")
    raw = _json(_event("nu1", "cu0", T0_MS, item_id="caf\u00e9"))
    add(u, raw.replace("\u00e9".encode(), b"\xe9"), "dead:not_utf8", "latin-1 byte in a string")
    add(u, b"\xff\xfe" + _json(_event("nu2", "cu0", T0_MS)), "dead:not_utf8", "BOM-ish prefix")
    # Numbers that are not numbers, prices that are not prices.
    for value, case in ((float("nan"), "NaN"), (float("inf"), "Infinity"), (-float("inf"), "-Inf")):
        add(u, _json(_event(f"p-{case}", "cu0", T0_MS, price=value)), "dead:not_json", case)
    add(u, _json(_event("p-neg", "cu0", T0_MS, price=-5.0)), "dead:schema", "negative price")
    add(u, _json(_event("p-big", "cu0", T0_MS, price=1e12)), "dead:schema", "absurd price")
    add(u, _json(_event("p-str", "cu0", T0_MS, price="9.99")), "dead:schema", "price as string")
    big = _json(_event("p-e999", "cu0", T0_MS))[:-1] + b', "price": 1e999}'
    add(u, big, "dead:not_json", "price 1e999")
    add(u, _json(_event("q-neg", "cu0", T0_MS, quantity=-1)), "dead:schema", "negative quantity")
    # Times.
    add(u, _json(_event("t-str", "cu0", "yesterday")), "dead:bad_timestamp", "timestamp text")
    add(u, _json(_event("t-neg", "cu0", -1)), "dead:bad_timestamp", "negative epoch ms")
    add(u, _json(_event("t-big", "cu0", 2**63)), "dead:bad_timestamp", "epoch ms 2^63")
    add(u, _json(_event("t-3001", "cu0", 32_535_216_000_000)), "dead:bad_timestamp", "year 3001 ms")
    add(u, _json(_event("t-frac", "cu0", 1.5)), "dead:bad_timestamp", "fractional ms")
    y10k = _event("t-y10k", "cu0", "9999-12-31T23:59:59-23:00")
    add(u, _json(y10k), "dead:bad_timestamp", "year 10000 in UTC via offset")
    y0 = _event("t-y0", "cu0", "0001-01-01T00:00:00+23:00")
    add(u, _json(y0), "dead:bad_timestamp", "year 0 in UTC via offset")
    # Strings: huge, empty, missing, wrong vocabulary.
    add(u, _json(_event("s-big", "cu0", T0_MS, pad="x" * 70_000)), "dead:too_large", "70 KB pad")
    add(b"x" * 300, _json(_event("s-uid", "x" * 300, T0_MS)), "dead:schema", "user id 300 chars")
    add(u, _json(_event("", "cu0", T0_MS)), "dead:schema", "empty event id")
    add(
        u,
        _json({"event_id": "m1", "event_type": "view", "timestamp": T0_MS}),
        "dead:schema",
        "no user",
    )
    bad_type = _event("ty1", "cu0", T0_MS, event_type="teleport")
    add(u, _json(bad_type), "dead:unknown_event_type", "unknown event type")
    # Keys.
    add(None, _json(_event("k-null", "cu0", T0_MS)), "dead:empty_key", "null key")
    add(b"", _json(_event("k-empty", "cu0", T0_MS)), "dead:empty_key", "empty key")
    add(b"someone-else", _json(_event("k-other", "rekeyed-user", T0_MS)), "rekeyed", "mis-keyed")
    add(b"\xff\xfe", _json(_event("k-bin", "rekeyed-bin", T0_MS)), "rekeyed", "non-UTF-8 key")

    # Valid but odd: these are scored (see docs/policies.md for what they do to state).
    odd: list[tuple[bytes | None, bytes | None, str, str]] = []
    ancient = _event("o-1970", "cu-ancient", "1970-01-01T00:00:00.001Z", event_type="click")
    odd.append((b"cu-ancient", _json(ancient), "scored", "1970 timestamp"))
    year1 = _event("o-0001", "cu-ancient", "0001-01-01T00:00:00Z", event_type="view")
    odd.append((b"cu-ancient", _json(year1), "scored", "year 1 timestamp, out of order"))
    nul = _event("o-nul", "cu-nul\u0000", T0_MS)
    odd.append(("cu-nul\u0000".encode(), _json(nul), "scored", "NUL in user id"))
    emoji = _event("o-emoji", "cu-\U0001f6d2", T0_MS, extra={"deep": [[[1]]]})
    odd.append(("cu-\U0001f6d2".encode(), _json(emoji), "scored", "emoji user id, extra field"))

    # Duplicates and out-of-order events among the good ones, at chosen places.
    records = good[:30] + hostile[:25] + good[30:60] + odd + hostile[25:] + good[60:]
    out = list(records)
    for key, value, _, _ in rng.sample(good[:60], 10):  # re-sent later: same key, same bytes
        out.insert(rng.randrange(len(records) - 25, len(out)), (key, value, "duplicate", "dup"))
    for i, user in enumerate(USERS[:4]):  # late: an hour before the user's newest event so far
        late = _event(f"late{i}", user, clock[user] - 3_600_000, event_type="click")
        out.append((user.encode(), _json(late), "scored", "late, out of order"))
    return out


def write(path: Path = HERE / "hostile.jsonl") -> int:
    """Write the corpus; returns the number of records."""
    rows = build()
    with path.open("w") as f:
        for key, value, expect, case in rows:
            doc = {"key_b64": _b64(key), "value_b64": _b64(value), "expect": expect, "case": case}
            f.write(json.dumps(doc) + "\n")
    return len(rows)


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


if __name__ == "__main__":
    print(f"{write()} records written to {HERE / 'hostile.jsonl'}")
