"""The alerts viewer's table shows user ids as they are: rich markup in them is text."""

from __future__ import annotations

from rich.console import Console

import schemas
from worker.tools.alerts_viewer import _table


def test_markup_in_a_user_id_is_printed_literally() -> None:
    users = ["[/]", "[bold red]x[/bold red]", "[link=http://evil]y"]
    alerts = [{"alert_type": "churn", "user_id": u, "score": 0.9, "threshold": 0.5} for u in users]
    console = Console(record=True, width=200, color_system=None)
    console.print(_table(alerts, "3 alerts"))
    text = console.export_text()
    for user in users:
        assert user in text


def test_reasons_are_shown_and_alerts_without_them_still_print() -> None:
    from worker.tools.alerts_viewer import _line

    alert = schemas.examples("alert")["alert.propensity.json"]
    old = schemas.examples("alert")["alert.churn_sweep.json"]  # written before reasons existed
    console = Console(record=True, width=250, color_system=None)
    console.print(_table([alert, old], "2 alerts"))
    text = console.export_text()
    assert "+0.310 3 add_to_cart, the last one just now" in text
    assert "why=[+0.310 3 add_to_cart, the last one just now; +0.120" in _line(alert)
    assert "why=" not in _line(old)
