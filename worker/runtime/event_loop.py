"""Which asyncio event loop the worker runs on: uvloop when installed, unless turned off.

Faust picks its loop once, when ``faust`` is first imported (``faust/__init__.py`` reads
``FAUST_LOOP`` and sets the asyncio policy through ``mode.loop.use``). The worker starts Faust
without Faust's command line, so this is the one place that sets ``FAUST_LOOP``, and it must run
before anything imports ``faust``. uvloop's loop is written in C (libuv): the per-event
bookkeeping of Faust and aiokafka (tasks, futures, socket reads) costs less on it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Literal

EventLoop = Literal["uvloop", "asyncio"]
_FAUST_NAMES = {"uvloop": "uvloop", "asyncio": "aio"}  # mode.loop.LOOPS' names


class LoopSelectedTooLate(RuntimeError):
    """``faust`` was imported before the loop was chosen: the choice would be ignored."""


def select(wanted: EventLoop) -> EventLoop:
    """Set ``FAUST_LOOP`` for ``wanted`` (asyncio when uvloop is not installed); the loop used."""
    if "faust" in sys.modules:
        raise LoopSelectedTooLate("the event loop must be chosen before faust is imported")
    used: EventLoop = wanted
    if wanted == "uvloop" and importlib.util.find_spec("uvloop") is None:
        used = "asyncio"
    os.environ["FAUST_LOOP"] = _FAUST_NAMES[used]
    return used
