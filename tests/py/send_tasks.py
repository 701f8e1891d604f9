#!/usr/bin/env python3
"""Publish Celery tasks the way the RSTUF API does (celery 5.6.3 client).

Usage: send_tasks.py BROKER_URL QUEUE TASKS_JSON

TASKS_JSON is a list of {"name", "id", "kwargs"} objects, or
{"raw_body", "id", "name"} for a deliberately malformed message (the body
bytes are sent as given with Celery's headers). The main task goes through
apply_async like the API's `repository_metadata.apply_async(...)`; any other
name through send_task, like celery beat.
"""
import json
import sys

from celery import Celery

API_TASK = "app.repository_service_tuf_worker"


def send(broker: str, queue: str, tasks: list) -> None:
    """Publishes `tasks` (the TASKS_JSON list) to `queue`."""
    app = Celery("rstuf_api_like", broker=broker)
    app.conf.broker_heartbeat = 0

    @app.task(name=API_TASK, serializer="json")
    def repository_metadata(action, payload):  # never executed here
        return None

    for task in tasks:
        if "raw_body" in task:
            with app.producer_or_acquire() as producer:
                producer.publish(
                    task["raw_body"].encode(),
                    routing_key=queue,
                    exchange="",
                    content_type="application/json",
                    content_encoding="utf-8",
                    headers={"lang": "py", "task": task["name"], "id": task["id"],
                             "retries": 0, "root_id": task["id"], "parent_id": None},
                    declare=[],
                    serializer=None,
                )
        elif task["name"] == API_TASK:
            repository_metadata.apply_async(
                kwargs=task["kwargs"], task_id=task["id"], queue=queue, acks_late=True
            )
        else:
            app.send_task(task["name"], kwargs=task["kwargs"], task_id=task["id"], queue=queue)


def main() -> int:
    send(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
