"""Training data in: readers for real event-log formats and the generic format simulate writes.

>>> from training.datasets import FORMATS
>>> FORMATS
('generic', 'taobao', 'cdnow', 'retailrocket', 'rees46')

Import-light on purpose (no pyarrow, no torch): the worker's replay command imports this package.
"""

from training.datasets.errors import DatasetError
from training.datasets.files import source_stem
from training.datasets.formats import FORMATS, GENERIC_COLUMNS
from training.datasets.reader import EventLog, ReadStats, read_events
from training.datasets.writer import write_events

__all__ = [
    "FORMATS",
    "GENERIC_COLUMNS",
    "DatasetError",
    "EventLog",
    "ReadStats",
    "read_events",
    "source_stem",
    "write_events",
]
