#!/usr/bin/env python3
"""A stand-in for the four RSTUF API endpoints `rstuf admin import-artifacts`
calls, so tests can drive the real CLI against our worker without running
the API (FastAPI, its own settings and containers). NOT the API: only what
the CLI reads of each answer, taken from the API's behaviour:

  GET  /api/v1/bootstrap/          bootstrap state from the Redis settings
                                   (BOOTSTRAP read fresh with dynaconf)
  GET  /api/v1/config/             the settings hash, keys lower-cased
                                   (404 before bootstrap)
  POST /api/v1/artifacts/publish/  sends publish_artifacts with payload null
                                   to the internals queue with the celery
                                   client, as the API does; 202 + task id
  GET  /api/v1/task/?task_id=ID    the task as the API shows it, through
                                   shared/vectors/celery/check_result.py
                                   (500 where the API would fail)

Usage: api_stand_in.py REDIS_DB BROKER_URL INTERNALS_QUEUE CHECK_RESULT_PY

Settings and task results share Redis database REDIS_DB (as in the test
deployments). Listens on a free port of 127.0.0.1 and prints
`listening on PORT` once it accepts requests.
"""
import datetime
import json
import subprocess
import sys
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from dynaconf import Dynaconf

from send_tasks import API_TASK, send


class StandIn:
    def __init__(self, redis_db: int, broker: str, internals: str, check_result: str):
        self.settings = Dynaconf(
            redis_enabled=True,
            redis={"host": "127.0.0.1", "port": 6379, "db": redis_db,
                   "decode_responses": True},
        )
        self.results = f"redis://127.0.0.1:6379/{redis_db}"
        self.broker, self.internals = broker, internals
        self.check_result = check_result

    def bootstrap(self) -> dict:
        """`{bootstrap, state, id}`: finished is a bare task id, an
        intermediate state is `<state>-<task id>`."""
        self.settings.reload()
        value = self.settings.get_fresh("BOOTSTRAP")
        if value is None:
            return {"bootstrap": False}
        parts = value.split("-")
        if len(parts) == 1:
            return {"bootstrap": True, "state": "finished", "id": value}
        if len(parts) == 2:
            return {"bootstrap": False, "state": parts[0], "id": parts[1]}
        return {"bootstrap": False, "state": "unknown"}

    def get_bootstrap(self):
        data = self.bootstrap()
        locked = data["bootstrap"] or data.get("state") in ("pre", "signing")
        message = ("System LOCKED for bootstrap." if locked
                   else "System available for bootstrap.")
        return 200, {"data": data, "message": message}

    def get_config(self):
        state = self.bootstrap()
        if not state["bootstrap"]:
            return 404, {"detail": {
                "message": "No Repository Settings/Config found.",
                "error": f"It requires bootstrap. State: {state.get('state')}"}}
        self.settings.fresh()
        data = {}
        for key, value in self.settings.to_dict().items():
            value = value.lower() if isinstance(value, str) else value
            if value != "none":
                data[key.lower()] = value
        return 200, {"data": data, "message": "Current Settings"}

    def post_publish(self):
        task_id = uuid.uuid4().hex
        send(self.broker, self.internals, [{
            "name": API_TASK, "id": task_id,
            "kwargs": {"action": "publish_artifacts", "payload": None}}])
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        return 202, {
            "data": {"artifacts": [], "task_id": task_id, "last_update": now},
            "message": "Publish artifacts successfully submitted."}

    def get_task(self, task_id: str):
        out = subprocess.run(
            [sys.executable, self.check_result, task_id, "--backend", self.results],
            capture_output=True, text=True, check=False)
        view = json.loads(out.stdout)
        if view["api_would_fail"]:
            return 500, {"detail": view}
        data = {k: v for k, v in view["data"].items() if v is not None}
        return 200, {"data": data, "message": "Task state."}

    def answer(self, method: str, target: str):
        url = urlsplit(target)
        route = (method, url.path.rstrip("/"))
        if route == ("GET", "/api/v1/bootstrap"):
            return self.get_bootstrap()
        if route == ("GET", "/api/v1/config"):
            return self.get_config()
        if route == ("POST", "/api/v1/artifacts/publish"):
            return self.post_publish()
        if route == ("GET", "/api/v1/task"):
            return self.get_task(parse_qs(url.query)["task_id"][0])
        return 404, {"detail": f"the stand-in does not serve {method} {url.path}"}


def handler(stand_in: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def reply(self, method: str):
            status, body = stand_in.answer(method, self.path)
            raw = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            self.reply("GET")

        def do_POST(self):
            self.reply("POST")

    return Handler


def main() -> int:
    redis_db, broker, internals, check_result = sys.argv[1:5]
    stand_in = StandIn(int(redis_db), broker, internals, check_result)
    server = HTTPServer(("127.0.0.1", 0), handler(stand_in))
    print(f"listening on {server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
