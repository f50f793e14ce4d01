"""The worker's web server serves /metrics, /healthz and /readyz, and nothing else.

Faust's built-in routes answered beside them: ``/table/user-state/<raw user id>/`` returned that
user's stored state and ``/router/...`` named the host that holds it, unauthenticated. A running
worker with a user in its table is asked for each of them: 404.
"""

from __future__ import annotations

import pytest

from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import produce
from tests.worker_artifacts import keyed, make_events, shared_artifact

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CLOSED = [
    "/table/",
    "/table/user-state/",
    "/table/user-state/{user}/",
    "/table/user-state/{user}",
    "/router/",
    "/router/user-state/{user}/",
    "/",
    "/assignment/",
    "/graph/",
    "/performance/",
    "/metrics/../table/user-state/{user}/",
    "/healthz/extra",
]


def test_only_health_routes_answer(kafka_bootstrap: str, worker_factory: WorkerFactory) -> None:
    topics = worker_factory.topics
    events = make_events(20, users=2, seed=5)
    worker = worker_factory.start(shared_artifact(), partitions=1, scores_topic="")
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(events))
        worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= len(events))
        user = events[0].user_id  # its state is in the table now
        answers = {path: worker.get(path.format(user=user)) for path in CLOSED}
        open_ = {path: worker.get(path)[0] for path in ("/metrics", "/healthz", "/readyz")}
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert open_ == {"/metrics": 200, "/healthz": 200, "/readyz": 200}
    served = {path: status for path, (status, _) in answers.items() if status != 404}
    assert served == {}, f"routes that should be closed answered: {served}"
    assert not [path for path, (_, body) in answers.items() if user.encode() in body]
