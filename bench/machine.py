"""The machine a benchmark ran on: CPU, cores, memory, and the versions that change the numbers.

Every result file carries this block, because a number without its machine cannot be compared.
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

POM = Path(__file__).resolve().parent.parent / "deploy" / "local" / "pom.xml"
PACKAGES = ("onnxruntime", "torch", "faust-streaming", "confluent-kafka", "aiokafka", "numpy")


def describe() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, package versions and the pinned Kafka broker."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count() or 0,
        "memory_bytes": _memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            **{name: _version(name) for name in PACKAGES},
            "kafka_broker": _kafka_version(),
        },
        "gpu": _gpu(),
        # The machine is shared: a high load average explains a noisy number.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _kafka_version() -> str | None:
    # The broker is whatever deploy/local/pom.xml pins; kafka.sh runs exactly those jars.
    try:
        found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    except OSError:
        return None
    return found.group(1) if found else None


def _gpu() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # torch missing or a broken CUDA install: report no GPU
        return None
    return None
