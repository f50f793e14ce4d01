"""Which asyncio event loop the worker runs on: uvloop when installed, unless turned off.

Faust picks its loop once, when ``faust`` is first imported (``faust/__init__.py`` reads
``FAUST_LOOP`` and sets the asyncio policy through ``mode.loop.use``). The worker starts Faust
without Faust's command line, so this is the one place that sets ``FAUST_LOOP``, and it must run
before anything imports ``faust``. uvloop's loop is written in C (libuv): the per-event
bookkeeping of Faust and aiokafka (tasks, futures, socket reads) costs less on it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from typing import Literal

EventLoop = Literal["uvloop", "asyncio"]
_FAUST_NAMES = {"uvloop": "uvloop", "asyncio": "aio"}  # mode.loop.LOOPS' names


def select(wanted: EventLoop) -> tuple[EventLoop, str]:
    """Set ``FAUST_LOOP`` for ``wanted``; the loop the worker will run on, and why not ``wanted``.

    Falls back to asyncio when uvloop is not installed. Once ``faust`` is imported the choice is
    made: the loop already in effect is returned (a program that imports faust before calling
    the worker's ``main``), with the reason, for the caller to log.
    """
    if "faust" in sys.modules:
        policy = type(asyncio.get_event_loop_policy()).__module__
        used: EventLoop = "uvloop" if policy.startswith("uvloop") else "asyncio"
        return used, "" if used == wanted else "faust was imported before the loop was chosen"
    if wanted == "uvloop" and importlib.util.find_spec("uvloop") is None:
        os.environ["FAUST_LOOP"] = _FAUST_NAMES["asyncio"]
        return "asyncio", "uvloop is not installed"
    os.environ["FAUST_LOOP"] = _FAUST_NAMES[wanted]
    return wanted, ""
