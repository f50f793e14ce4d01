"""The readers: every format in every container, bad rows counted, each refusal one clear line,
the real Taobao and CDNOW files load with their known counts, and write -> read is the identity."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.event import EVENT_TYPES, Event, decode_event, encode_event
from training.datasets import FORMATS, DatasetError, read_events, write_events

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TAOBAO = DATA / "taobao-userbehavior" / "UserBehavior_first80min.csv"
CDNOW = DATA / "cdnow" / "CDNOW_master.txt"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# Per format: header, data rows (text), and the events the good rows must give, in time order.
# Each fixture has exactly one bad row, so a read with the default max_bad_fraction refuses it.
FIXTURES: dict[str, tuple[list[str], list[list[str]], list[Event]]] = {
    "generic": (
        ["event_id", "user_id", "event_type", "timestamp", "session_id", "item_id",
         "category_id", "price", "quantity"],
        [
            ["e1", "u1", "purchase", "2026-01-02T03:04:06Z", "s1", "i1", "c1", "9.5", "2"],
            ["", "u1", "view", "1767323045000", "s1", "i1", "c1", "9.5", ""],
            ["e3", "u2", "teleport", "1767323045000", "", "", "", "", ""],
        ],
        [
            Event(event_id="fx:1", user_id="u1", event_type="view", ts_ms=ms("2026-01-02T03:04:05"),
                  session_id="s1", item_id="i1", category_id="c1", price=9.5),
            Event(event_id="e1", user_id="u1", event_type="purchase",
                  ts_ms=ms("2026-01-02T03:04:06"), session_id="s1", item_id="i1",
                  category_id="c1", price=9.5, quantity=2),
        ],
    ),
    "taobao": (
        ["user_id", "item_id", "category_id", "behavior_type", "timestamp"],
        [
            ["7", "100", "3", "buy", "1511658001"],
            ["7", "100", "3", "pv", "1511658000"],
            ["8", "101", "3", "fav", "1511658000"],
            ["8", "101", "3", "cart", "1511658002"],
            ["9", "102", "4", "unfollow", "1511658002"],
        ],
        [
            Event(event_id="fx:1", user_id="7", event_type="view", ts_ms=1511658000000,
                  item_id="100", category_id="3"),
            Event(event_id="fx:2", user_id="8", event_type="wishlist", ts_ms=1511658000000,
                  item_id="101", category_id="3"),
            Event(event_id="fx:0", user_id="7", event_type="purchase", ts_ms=1511658001000,
                  item_id="100", category_id="3"),
            Event(event_id="fx:3", user_id="8", event_type="add_to_cart", ts_ms=1511658002000,
                  item_id="101", category_id="3"),
        ],
    ),
    "cdnow": (
        ["customer_id", "date", "number_of_cds", "dollar_value"],
        [
            ["00002", "19970112", "2", "12.00"],
            ["00001", "19970101", "1", "11.77"],
            ["00003", "19971340", "1", "5.00"],
        ],
        [
            Event(event_id="fx:1", user_id="00001", event_type="purchase",
                  ts_ms=ms("1997-01-01T00:00:00"), price=11.77, quantity=1),
            Event(event_id="fx:0", user_id="00002", event_type="purchase",
                  ts_ms=ms("1997-01-12T00:00:00"), price=12.0, quantity=2),
        ],
    ),
    "retailrocket": (
        ["timestamp", "visitorid", "event", "itemid", "transactionid"],
        [
            ["1433221332117", "257597", "view", "355908", ""],
            ["1433224214164", "992329", "addtocart", "248676", ""],
            ["1433224314164", "992329", "transaction", "248676", "4000"],
            ["1433224314165", "992329", "refund", "248676", ""],
        ],
        [
            Event(event_id="fx:0", user_id="257597", event_type="view", ts_ms=1433221332117,
                  item_id="355908"),
            Event(event_id="fx:1", user_id="992329", event_type="add_to_cart",
                  ts_ms=1433224214164, item_id="248676"),
            Event(event_id="fx:2", user_id="992329", event_type="purchase", ts_ms=1433224314164,
                  item_id="248676"),
        ],
    ),
    "rees46": (
        ["event_time", "event_type", "product_id", "category_id", "category_code", "brand",
         "price", "user_id", "user_session"],
        [
            ["2019-10-01 00:00:00 UTC", "view", "44600062", "2103807459595387724", "",
             "shiseido", "35.79", "541312140", "72d76fde-8bb3"],
            ["2019-10-01 00:00:05 UTC", "purchase", "44600062", "2103807459595387724",
             "beauty.skin", "shiseido", "35.79", "541312140", "72d76fde-8bb3"],
            ["2019-10-01 00:00:01 UTC", "cart", "3900821", "2053013552326770905", "", "",
             "-1", "554748717", ""],
        ],
        [
            Event(event_id="fx:0", user_id="541312140", event_type="view",
                  ts_ms=ms("2019-10-01T00:00:00"), session_id="72d76fde-8bb3",
                  item_id="44600062", category_id="2103807459595387724", price=35.79),
            Event(event_id="fx:1", user_id="541312140", event_type="purchase",
                  ts_ms=ms("2019-10-01T00:00:05"), session_id="72d76fde-8bb3",
                  item_id="44600062", category_id="2103807459595387724", price=35.79),
        ],
    ),
}  # fmt: skip
BAD_REASON = {
    "generic": "row 2: unknown_event_type",
    "taobao": "row 4: unknown_event_type",
    "cdnow": "row 2: bad_timestamp",
    "retailrocket": "row 3: unknown_event_type",
    "rees46": "row 2: schema",  # price -1
}
CONTAINERS = ("csv", "csv.gz", "parquet")


def write_table(
    path: Path, header: list[str], rows: list[list[str]], *, spaces: bool = False
) -> Path:
    """A fixture file in the container its name says (.csv, .csv.gz, .txt, .parquet)."""
    if path.name.endswith(".parquet"):
        pq.write_table(
            pa.table({name: [r[i] for r in rows] for i, name in enumerate(header)}), path
        )
        return path
    if spaces:  # CDNOW's layout: padded columns, CRLF
        text = "".join(" " + "  ".join(r) + "\r\n" for r in [header, *rows])
    else:
        with open(path.with_suffix(".tmp"), "w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([header, *rows])
        text = path.with_suffix(".tmp").read_text(encoding="utf-8")
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def fixture_file(tmp_path: Path, fmt: str, container: str) -> Path:
    header, rows, _ = FIXTURES[fmt]
    name = f"fx.{container}" if not (fmt == "cdnow" and container != "parquet") else "fx.txt"
    if fmt == "cdnow" and container == "csv.gz":
        name = "fx.txt.gz"
    return write_table(tmp_path / name, header, rows, spaces=fmt == "cdnow")


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_in_every_container(tmp_path: Path, fmt: str, container: str) -> None:
    path = fixture_file(tmp_path, fmt, container)
    log = read_events(path, fmt, max_bad_fraction=0.5)
    assert log.events == FIXTURES[fmt][2]
    assert (log.stats.rows, log.stats.bad) == (len(FIXTURES[fmt][1]), 1)
    assert log.stats.bad_examples[0].startswith(BAD_REASON[fmt])
    assert log.source == str(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_bad_row_in_a_few_is_too_many_by_default(tmp_path: Path, fmt: str) -> None:
    path = fixture_file(tmp_path, fmt, "csv")
    with pytest.raises(DatasetError) as err:
        read_events(path, fmt)
    message = str(err.value)
    assert f"1 of {len(FIXTURES[fmt][1])} rows are bad" in message
    assert BAD_REASON[fmt] in message and "\n" not in message


def test_bad_rows_are_counted_with_reasons_and_the_rest_kept(tmp_path: Path) -> None:
    header = FIXTURES["generic"][0]
    good = [[f"e{i}", "u1", "view", str(1000 + i), "", "", "", "1.5", "1"] for i in range(200)]
    bad = [
        ["b0", "u1", "view", "yesterday", "", "", "", "", ""],
        ["b1", "u1", "view", "1000", "", "", "", "abc", ""],
        ["b2", "u1", "view", "1000", "", "", "", "nan", ""],
        ["b3", "u1", "view", "1000", "", "", "", "-2", ""],
        ["b4", "u1", "view", "1000", "", "", "", "", "1.5"],
        ["b5", "", "view", "1000", "", "", "", "", ""],
        ["b6", "u1", "view"],
    ]
    path = write_table(
        tmp_path / "mixed.csv",
        header,
        [*bad, *good, ["p", "u1", "purchase", "9", "", "", "", "", ""]],
    )
    log = read_events(path, max_bad_fraction=0.05)
    assert (log.stats.rows, log.stats.bad, len(log.events)) == (208, 7, 201)
    assert [reason.split(":")[0:2] for reason in log.stats.bad_examples] == [
        ["row 0", " bad_timestamp"],
        ["row 1", " schema"],
        ["row 2", " schema"],
        ["row 3", " schema"],
        ["row 4", " schema"],
    ]
    assert "not a finite number" in log.stats.bad_examples[2]


def test_events_sorted_by_time_then_row_order(tmp_path: Path) -> None:
    header = FIXTURES["generic"][0]
    times = [5, 3, 5, 1, 3, 5]
    rows = [[f"e{i}", "u", "purchase", str(t), "", "", "", "", ""] for i, t in enumerate(times)]
    log = read_events(write_table(tmp_path / "order.csv", header, rows))
    assert [e.event_id for e in log.events] == ["e3", "e1", "e4", "e0", "e2", "e5"]


def test_undecodable_bytes_spoil_only_their_row(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    lines = [b"event_id,user_id,event_type,timestamp"]
    lines += [b"e%d,u,purchase,%d" % (i, i) for i in range(150)]
    lines.insert(5, b"x,caf\xe9,view,1")
    path.write_bytes(b"\n".join(lines) + b"\n")
    log = read_events(path)
    assert (log.stats.rows, log.stats.bad, len(log.events)) == (151, 1, 150)
    assert log.stats.bad_examples == ["row 4: not_utf8: the row holds bytes that are not UTF-8"]


def test_parquet_with_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    table = pa.table({
        "user_id": ["u1", "u2"],
        "event_type": ["purchase", "view"],
        "timestamp": pa.array([datetime(2026, 1, 2, tzinfo=UTC)] * 2, pa.timestamp("ms", "UTC")),
        "price": pa.array([1.25, None], pa.float64()),
        "quantity": pa.array([3, None], pa.int32()),
    })  # fmt: skip
    pq.write_table(table, path)
    events = read_events(path).events
    assert [(e.event_id, e.ts_ms, e.price, e.quantity) for e in events] == [
        ("typed:0", ms("2026-01-02T00:00:00"), 1.25, 3),
        ("typed:1", ms("2026-01-02T00:00:00"), None, None),
    ]


def one_line_error(path: Path, fmt: str = "generic", **kwargs: Any) -> str:
    with pytest.raises(DatasetError) as err:
        read_events(path, fmt, **kwargs)
    message = str(err.value)
    assert "\n" not in message and message
    return message


def test_refusals_are_one_clear_line(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 64
    (tmp_path / "garbage.csv").write_bytes(garbage)
    (tmp_path / "garbage.csv.gz").write_bytes(garbage)
    (tmp_path / "garbage.parquet").write_bytes(garbage)
    (tmp_path / "cut.csv.gz").write_bytes(
        gzip.compress(b"user_id,event_type,timestamp\n" * 99)[:40]
    )
    (tmp_path / "zero.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("user_id,event_type,timestamp\n")
    write_table(
        tmp_path / "views.csv", ["user_id", "event_type", "timestamp"], [["u", "view", "1"]]
    )
    taobao = write_table(tmp_path / "tb.csv", *FIXTURES["taobao"][:2])
    write_table(tmp_path / "when.csv", ["user_id", "event_type", "timestamp"], [["u", "view", "?"]])
    cases = {
        "no such file": one_line_error(tmp_path / "absent.csv"),
        "is a directory": one_line_error(tmp_path),
        "missing column(s) user_id, event_type, timestamp": one_line_error(
            tmp_path / "garbage.csv"
        ),
        "corrupt gzip": one_line_error(tmp_path / "garbage.csv.gz"),
        "cannot read as Parquet": one_line_error(tmp_path / "garbage.parquet"),
        "corrupt gzip data": one_line_error(tmp_path / "cut.csv.gz"),
        "empty file (no header row)": one_line_error(tmp_path / "zero.csv"),
        "empty file (a header but no data rows)": one_line_error(tmp_path / "header.csv"),
        "not a retailrocket file: missing column(s) visitorid, event, itemid": one_line_error(
            taobao, "retailrocket"
        ),
        "no purchase events among 1 events": one_line_error(tmp_path / "views.csv"),
        "unknown format 'csv': choose one of generic, taobao, cdnow, retailrocket, rees46": (
            one_line_error(taobao, "csv")
        ),
        "max_bad_fraction=2: must be within [0, 1]": one_line_error(taobao, max_bad_fraction=2),
        "none of its 1 rows is a valid 'generic' event; first: row 0: bad_timestamp": (
            one_line_error(tmp_path / "when.csv", max_bad_fraction=1.0)
        ),
    }
    for expected, message in cases.items():
        assert expected in message, (expected, message)
    assert read_events(tmp_path / "views.csv", require_purchase=False).stats.rows == 1


def test_write_refuses_an_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"name it \.csv, \.csv\.gz, \.parquet"):
        write_events([], tmp_path / "events.json")
    assert list(tmp_path.iterdir()) == []


def test_pyarrow_is_imported_only_for_parquet(tmp_path: Path) -> None:
    path = write_table(tmp_path / "g.csv.gz", *FIXTURES["generic"][:2])
    code = (
        "import sys; from training.datasets import read_events; "
        f"read_events({str(path)!r}, max_bad_fraction=0.5); "
        "assert 'pyarrow' not in sys.modules, 'pyarrow imported'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


_ids = st.text(min_size=1, max_size=12)
_opt = st.none() | _ids
events_strategy = st.builds(
    Event,
    event_id=_ids,
    user_id=_ids,
    event_type=st.sampled_from(EVENT_TYPES),
    ts_ms=st.integers(0, 32_503_680_000_000),
    session_id=_opt,
    item_id=_opt,
    category_id=_opt,
    price=st.none() | st.floats(0, 1e9, allow_nan=False),
    quantity=st.none() | st.integers(0, 1_000_000),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(events_strategy, min_size=1, max_size=8))
def test_write_then_read_is_the_identity(tmp_path: Path, events: list[Event]) -> None:
    ordered = sorted(events, key=lambda e: e.ts_ms)
    for container in CONTAINERS:
        path = tmp_path / f"round.{container}"
        assert write_events(events, path) == len(events)
        log = read_events(path, require_purchase=False)
        assert log.events == ordered and log.stats.bad == 0
        # and they are events the worker would accept off the wire
        assert [decode_event(encode_event(e)) for e in log.events] == ordered


_cells = st.text(max_size=6) | st.sampled_from(["", "-", "--5", "²", "1e3", "nan", "view", "0"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.lists(_cells, min_size=1, max_size=10), min_size=1, max_size=6))
def test_any_cells_give_events_or_a_dataset_error(tmp_path: Path, rows: list[list[str]]) -> None:
    """Bad input gets a clear error and is counted; it never crashes the reader."""
    header = FIXTURES["generic"][0]
    for fmt in FORMATS:
        path = write_table(
            tmp_path / "fuzz.csv", header if fmt == "generic" else FIXTURES[fmt][0], rows
        )
        try:
            log = read_events(path, fmt, max_bad_fraction=1.0, require_purchase=False)
        except DatasetError as exc:
            assert "\n" not in str(exc)
        else:
            assert log.stats.rows == len(rows) == len(log.events) + log.stats.bad


def test_taobao_real_file() -> None:
    assert TAOBAO.is_file(), f"{TAOBAO} is missing: the shared data directory must be present"
    log = read_events(TAOBAO, "taobao")
    assert (log.stats.rows, log.stats.bad, len(log.events)) == (64_095, 0, 64_095)
    purchases = sum(e.event_type == "purchase" for e in log.events)
    assert 0.015 < purchases / len(log.events) < 0.035  # the README says about 2.3 %
    assert {e.event_type for e in log.events} == {"view", "add_to_cart", "wishlist", "purchase"}
    times = [e.ts_ms for e in log.events]
    assert times == sorted(times) and times[-1] - times[0] <= 80 * 60 * 1000
    assert log.events[0].event_id == "UserBehavior_first80min:0"


def test_cdnow_real_file() -> None:
    assert CDNOW.is_file(), f"{CDNOW} is missing: the shared data directory must be present"
    log = read_events(CDNOW, "cdnow")
    assert (log.stats.rows, log.stats.bad, len(log.events)) == (69_659, 0, 69_659)
    assert {e.event_type for e in log.events} == {"purchase"}
    assert len({e.user_id for e in log.events}) == 23_570
    assert log.events[0].ts_ms == ms("1997-01-01T00:00:00")
    assert log.events[-1].ts_ms <= ms("1998-06-30T00:00:00")
