"""FakeArgilla: a test double of an Argilla 2.x server (a network boundary we do not own).

A real HTTP server (aiohttp, 127.0.0.1, free port) speaking the subset of Argilla's REST API v1
that the argilla 2.8 SDK calls for splitreason's push/pull flow. The subset was taken from the
SDK's own requests (every request is logged in `requests`; one the fake does not know is a 404
kept in `unhandled`, and the tests check that list stays empty) and from argilla/_api/*.py:

    GET  /api/v1/me                       GET  /api/v1/me/workspaces     GET /api/v1/workspaces/{id}
    GET  /api/v1/me/datasets              POST /api/v1/datasets          GET|PATCH|DELETE /api/v1/datasets/{id}
    PUT  /api/v1/datasets/{id}/publish    GET|POST .../{id}/fields       GET|POST .../{id}/questions
    POST .../{id}/metadata-properties     GET  /api/v1/me/datasets/{id}/metadata-properties
    GET  .../{id}/vectors-settings        PUT  .../{id}/records/bulk     GET .../{id}/records
    POST /api/v1/records/{id}/responses   GET  /api/v1/users, /api/v1/users/{id}

State lives in memory. Validation follows the real server where it matters to us: span offsets
are checked against the field's length in *code points* (len() in Python, as the server does),
labels against the question's options, required questions on submit; a bulk upsert matches
existing records by external_id and leaves their fields and responses alone. Reviewers answer
through POST /records/{id}/responses, as the Argilla UI does, each with their own API key.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from tests.local_server import ThreadedServer


def _now() -> str:
    return datetime.utcnow().isoformat()  # the real server sends naive UTC times


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class FakeArgilla(ThreadedServer):
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.users: dict[str, dict] = {}
        self._keys: dict[str, str] = {}
        self.workspaces: dict[str, dict] = {}
        self.datasets: dict[str, dict] = {}
        self.records: dict[str, dict] = {}  # record id -> record (with dataset_id)
        self._lock = threading.Lock()
        self.owner_key = self.add_user("argilla", role="owner")
        self.add_workspace("argilla")

    # -- state the tests set up and inspect ----------------------------------------------------
    def add_user(self, username: str, role: str = "annotator") -> str:
        """Create a user; returns their API key."""
        user_id, key = str(uuid.uuid4()), f"{username}.apikey.{secrets.token_hex(8)}"
        self.users[user_id] = {"id": user_id, "username": username, "role": role, "first_name": username,
                               "last_name": None, "inserted_at": _now(), "updated_at": _now()}
        self._keys[key] = user_id
        return key

    def add_workspace(self, name: str) -> dict:
        workspace = {"id": str(uuid.uuid4()), "name": name, "inserted_at": _now(), "updated_at": _now()}
        self.workspaces[workspace["id"]] = workspace
        return workspace

    def dataset_named(self, name: str) -> dict:
        return next(d for d in self.datasets.values() if d["name"] == name)

    def records_of(self, name: str) -> list[dict]:
        dataset_id = self.dataset_named(name)["id"]
        return [r for r in self.records.values() if r["dataset_id"] == dataset_id]

    def record(self, dataset_name: str, external_id: str) -> dict:
        return next(r for r in self.records_of(dataset_name) if r["external_id"] == external_id)

    # -- lifecycle -------------------------------------------------------------------------------
    server_name = "fake Argilla server"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._dispatch)

    @property
    def url(self) -> str:
        return self.root_url

    # -- routing -----------------------------------------------------------------------------------
    _ID = r"([0-9a-f-]{36})"
    _ROUTES: list[tuple[str, str, str]] = [
        ("GET", r"/api/v1/me", "me"), ("GET", r"/api/v1/me/workspaces", "list_workspaces"),
        ("GET", rf"/api/v1/workspaces/{_ID}", "get_workspace"), ("GET", r"/api/v1/me/datasets", "list_datasets"),
        ("POST", r"/api/v1/datasets", "create_dataset"), ("GET", rf"/api/v1/datasets/{_ID}", "get_dataset"),
        ("PATCH", rf"/api/v1/datasets/{_ID}", "update_dataset"),
        ("DELETE", rf"/api/v1/datasets/{_ID}", "delete_dataset"),
        ("PUT", rf"/api/v1/datasets/{_ID}/publish", "publish"),
        ("GET", rf"/api/v1/datasets/{_ID}/fields", "list_fields"),
        ("POST", rf"/api/v1/datasets/{_ID}/fields", "create_field"),
        ("GET", rf"/api/v1/datasets/{_ID}/questions", "list_questions"),
        ("POST", rf"/api/v1/datasets/{_ID}/questions", "create_question"),
        ("POST", rf"/api/v1/datasets/{_ID}/metadata-properties", "create_metadata"),
        ("GET", rf"/api/v1/me/datasets/{_ID}/metadata-properties", "list_metadata"),
        ("GET", rf"/api/v1/datasets/{_ID}/vectors-settings", "list_vectors"),
        ("PUT", rf"/api/v1/datasets/{_ID}/records/bulk", "upsert_records"),
        ("GET", rf"/api/v1/datasets/{_ID}/records", "list_records"),
        ("POST", rf"/api/v1/records/{_ID}/responses", "create_response"),
        ("GET", r"/api/v1/users", "list_users"), ("GET", rf"/api/v1/users/{_ID}", "get_user"),
    ]

    async def _dispatch(self, request: web.Request) -> web.Response:
        for method, pattern, name in self._ROUTES:
            match = re.fullmatch(pattern, request.path)
            if method == request.method and match:
                self.requests.append((request.method, name))
                try:
                    user = self._authenticate(request)
                    body = await request.json() if request.can_read_body else None
                    with self._lock:
                        status, payload = getattr(self, "_" + name)(user, request, body, *match.groups())
                except ApiError as error:
                    return web.json_response({"detail": error.detail}, status=error.status)
                return web.json_response(payload, status=status)
        self.unhandled.append((request.method, request.path_qs))
        return web.json_response({"detail": "Not Found"}, status=404)

    def _authenticate(self, request: web.Request) -> dict:
        user_id = self._keys.get(request.headers.get("X-Argilla-Api-Key", ""))
        if user_id is None:
            raise ApiError(401, "Could not validate credentials")
        return self.users[user_id]

    @staticmethod
    def _require(user: dict, *roles: str) -> None:
        if user["role"] not in roles:
            raise ApiError(403, f"{user['role']} is not allowed to do this")

    def _dataset(self, dataset_id: str) -> dict:
        if dataset_id not in self.datasets:
            raise ApiError(404, f"Dataset with id `{dataset_id}` not found")
        return self.datasets[dataset_id]

    # -- users and workspaces ---------------------------------------------------------------------
    def _me(self, user, request, body):
        return 200, user

    def _list_users(self, user, request, body):
        self._require(user, "owner")
        return 200, {"items": list(self.users.values())}

    def _get_user(self, user, request, body, user_id):
        self._require(user, "owner")
        if user_id not in self.users:
            raise ApiError(404, f"User with id `{user_id}` not found")
        return 200, self.users[user_id]

    def _list_workspaces(self, user, request, body):
        return 200, {"items": list(self.workspaces.values())}

    def _get_workspace(self, user, request, body, workspace_id):
        if workspace_id not in self.workspaces:
            raise ApiError(404, f"Workspace with id `{workspace_id}` not found")
        return 200, self.workspaces[workspace_id]

    # -- datasets and their settings ------------------------------------------------------------------
    def _dataset_json(self, dataset: dict) -> dict:
        return {k: v for k, v in dataset.items() if k not in ("fields", "questions", "metadata_properties")}

    def _list_datasets(self, user, request, body):
        return 200, {"items": [self._dataset_json(d) for d in self.datasets.values()]}

    def _create_dataset(self, user, request, body):
        self._require(user, "owner", "admin")
        name, workspace_id = body.get("name"), body.get("workspace_id")
        if not name or workspace_id not in self.workspaces:
            raise ApiError(422, "name and an existing workspace_id are required")
        if any(d["name"] == name and d["workspace_id"] == workspace_id for d in self.datasets.values()):
            raise ApiError(409, f"Dataset with name `{name}` already exists for workspace with id `{workspace_id}`")
        dataset = {"id": str(uuid.uuid4()), "name": name, "guidelines": body.get("guidelines"),
                   "allow_extra_metadata": body.get("allow_extra_metadata", True), "status": "draft",
                   "distribution": body.get("distribution") or {"strategy": "overlap", "min_submitted": 1},
                   "workspace_id": workspace_id, "last_activity_at": _now(), "inserted_at": _now(),
                   "updated_at": _now(), "fields": [], "questions": [], "metadata_properties": []}
        self.datasets[dataset["id"]] = dataset
        return 201, self._dataset_json(dataset)

    def _get_dataset(self, user, request, body, dataset_id):
        return 200, self._dataset_json(self._dataset(dataset_id))

    def _update_dataset(self, user, request, body, dataset_id):
        self._require(user, "owner", "admin")
        dataset = self._dataset(dataset_id)
        guidelines = body.get("guidelines")
        if guidelines is not None and not 1 <= len(guidelines) <= 10000:
            raise ApiError(422, "guidelines must have between 1 and 10000 characters")
        for key in ("guidelines", "allow_extra_metadata", "distribution"):
            if key in body and body[key] is not None:
                dataset[key] = body[key]
        dataset["updated_at"] = _now()
        return 200, self._dataset_json(dataset)

    def _delete_dataset(self, user, request, body, dataset_id):
        self._require(user, "owner", "admin")
        dataset = self.datasets.pop(dataset_id, None) or self._dataset(dataset_id)
        self.records = {k: r for k, r in self.records.items() if r["dataset_id"] != dataset_id}
        return 200, self._dataset_json(dataset)

    def _publish(self, user, request, body, dataset_id):
        dataset = self._dataset(dataset_id)
        if not dataset["fields"]:
            raise ApiError(422, "Dataset cannot be published without fields")
        if not any(q["required"] for q in dataset["questions"]):
            raise ApiError(422, "Dataset cannot be published without required questions")
        dataset["status"] = "ready"
        return 200, self._dataset_json(dataset)

    def _add_property(self, user, dataset_id: str, kind: str, body: dict, extra: dict) -> tuple[int, dict]:
        self._require(user, "owner", "admin")
        dataset = self._dataset(dataset_id)
        if kind in ("fields", "questions") and dataset["status"] == "ready":
            raise ApiError(422, f"{kind} cannot be created for a published dataset")
        names = [p["name"] for k in ("fields", "questions", "metadata_properties") for p in dataset[k]]
        if body["name"] in names:
            raise ApiError(409, f"`{body['name']}` already exists in dataset `{dataset_id}`")
        prop = {"id": str(uuid.uuid4()), "name": body["name"], "title": body.get("title") or body["name"],
                "settings": body["settings"], "dataset_id": dataset_id, "inserted_at": _now(),
                "updated_at": _now(), **extra}
        dataset[kind].append(prop)
        return 201, prop

    def _create_field(self, user, request, body, dataset_id):
        return self._add_property(user, dataset_id, "fields", body,
                                  {"required": body.get("required", True), "description": body.get("description")})

    def _create_question(self, user, request, body, dataset_id):
        settings = body["settings"]
        options = settings.get("options") or []
        if settings["type"] == "span":
            field = next((f for f in self._dataset(dataset_id)["fields"] if f["name"] == settings.get("field")), None)
            if field is None or field["settings"]["type"] != "text":
                raise ApiError(422, f"span question needs an existing text field, not {settings.get('field')!r}")
            if not options:
                raise ApiError(422, "span question needs at least one label")
        if settings["type"] == "label_selection" and len(options) < 2:
            raise ApiError(422, "label question needs at least two labels")
        return self._add_property(user, dataset_id, "questions", body,
                                  {"required": body.get("required", True), "description": body.get("description")})

    def _create_metadata(self, user, request, body, dataset_id):
        return self._add_property(user, dataset_id, "metadata_properties", body,
                                  {"visible_for_annotators": body.get("visible_for_annotators", True)})

    def _list_fields(self, user, request, body, dataset_id):
        return 200, {"items": self._dataset(dataset_id)["fields"]}

    def _list_questions(self, user, request, body, dataset_id):
        return 200, {"items": self._dataset(dataset_id)["questions"]}

    def _list_metadata(self, user, request, body, dataset_id):
        return 200, {"items": self._dataset(dataset_id)["metadata_properties"]}

    def _list_vectors(self, user, request, body, dataset_id):
        self._dataset(dataset_id)
        return 200, {"items": []}

    # -- records, suggestions and responses -----------------------------------------------------------
    def _check_value(self, dataset: dict, question: dict, value: Any, fields: dict) -> None:
        """The server's response/suggestion value checks (validators/response_values.py)."""
        settings = question["settings"]
        labels = [option["value"] for option in settings.get("options") or []]
        if settings["type"] == "label_selection":
            if value not in labels:
                raise ApiError(422, f"{value!r} is not a valid label for label selection question")
        elif settings["type"] == "span":
            if not isinstance(value, list):
                raise ApiError(422, f"span question expects a list of values, found {type(value).__name__}")
            field_len = len(fields.get(settings["field"]) or "")  # code points, as the server counts
            for item in value:
                if not (isinstance(item.get("start"), int) and isinstance(item.get("end"), int)
                        and 0 <= item["start"] < item["end"]):
                    raise ApiError(422, f"span value {item!r} needs integer start < end")
                if item["start"] > field_len - 1 or item["end"] > field_len:
                    raise ApiError(422, f"span question response value `end` must have a value lower or equal "
                                        f"than record field `{settings['field']}` length that is `{field_len}`")
                if item.get("label") not in labels:
                    raise ApiError(422, f"undefined label '{item.get('label')}' for span question")
            if not settings.get("allow_overlapping"):
                ordered = sorted(value, key=lambda item: item["start"])
                if any(b["start"] < a["end"] for a, b in zip(ordered, ordered[1:])):
                    raise ApiError(422, "overlapping values found between spans")

    def _question(self, dataset: dict, *, name: str | None = None, question_id: str | None = None) -> dict:
        for question in dataset["questions"]:
            if question["name"] == name or question["id"] == question_id:
                return question
        raise ApiError(422, f"question {name or question_id!r} does not exist in the dataset")

    def _check_fields_and_metadata(self, dataset: dict, item: dict, is_new: bool) -> None:
        fields = item.get("fields") or {}
        known = {f["name"]: f for f in dataset["fields"]}
        if is_new:
            unknown = sorted(set(fields) - set(known))
            if unknown:
                raise ApiError(422, f"found fields values for non configured fields: {unknown!r}")
            missing = [name for name, f in known.items() if f["required"] and not fields.get(name)]
            if missing:
                raise ApiError(422, f"missing required value for field: {missing[0]!r}")
        properties = {p["name"]: p for p in dataset["metadata_properties"]}
        for name, value in (item.get("metadata") or {}).items():
            prop = properties.get(name)
            if prop is None:
                if not dataset["allow_extra_metadata"]:
                    raise ApiError(422, f"'{name}' metadata property does not exists for dataset")
                continue
            settings = prop["settings"]
            if settings["type"] == "float" and not (isinstance(value, (int, float))
                                                    and (settings.get("min") is None or value >= settings["min"])
                                                    and (settings.get("max") is None or value <= settings["max"])):
                raise ApiError(422, f"'{name}' metadata value {value!r} is not a float within range")
            if settings["type"] == "terms" and not isinstance(value, str):
                raise ApiError(422, f"'{name}' metadata value {value!r} is not a string")

    def _upsert_records(self, user, request, body, dataset_id):
        self._require(user, "owner", "admin")
        dataset = self._dataset(dataset_id)
        if dataset["status"] != "ready":
            raise ApiError(422, "records cannot be created for a non published dataset")
        items = body.get("items") or []
        if not 1 <= len(items) <= 500:
            raise ApiError(422, "between 1 and 500 records per bulk upsert")
        by_external = {r["external_id"]: r for r in self.records.values() if r["dataset_id"] == dataset_id}
        found, results = [], []
        for position, item in enumerate(items):  # validate the whole bulk before changing anything
            existing = by_external.get(item.get("external_id")) or self.records.get(item.get("id") or "")
            try:
                self._check_fields_and_metadata(dataset, item, existing is None)
                fields = existing["fields"] if existing else item["fields"]
                for suggestion in item.get("suggestions") or []:
                    question = self._question(dataset, question_id=suggestion.get("question_id"))
                    self._check_value(dataset, question, suggestion["value"], fields)
                    score = suggestion.get("score")
                    if isinstance(score, list) and len(score) != len(suggestion["value"]):
                        raise ApiError(422, "number of items on value and score attributes doesn't match")
                if item.get("responses"):
                    raise ApiError(422, "this fake takes responses through POST /records/{id}/responses only")
            except ApiError as error:
                raise ApiError(422, f"Record at position {position} is not valid because {error.detail}") from None
        for item in items:
            record = by_external.get(item.get("external_id")) or self.records.get(item.get("id") or "")
            if record is None:
                record = {"id": str(uuid.uuid4()), "external_id": item.get("external_id"), "fields": item["fields"],
                          "metadata": item.get("metadata") or {}, "status": "pending", "dataset_id": dataset_id,
                          "inserted_at": _now(), "updated_at": _now(), "responses": [], "suggestions": []}
                self.records[record["id"]] = record
                by_external[record["external_id"]] = record
            else:
                found.append(record["id"])
                if "metadata" in item:
                    record["metadata"], record["updated_at"] = item["metadata"] or {}, _now()
            for suggestion in item.get("suggestions") or []:  # one suggestion per question: replaced
                record["suggestions"] = [s for s in record["suggestions"]
                                         if s["question_id"] != suggestion["question_id"]]
                record["suggestions"].append({"id": str(uuid.uuid4()), "question_id": suggestion["question_id"],
                                              "type": suggestion.get("type"), "value": suggestion["value"],
                                              "score": suggestion.get("score"), "agent": suggestion.get("agent"),
                                              "inserted_at": _now(), "updated_at": _now()})
            results.append(record)
        return 200, {"items": [self._record_json(r, ("responses", "suggestions")) for r in results],
                     "updated_item_ids": found}

    @staticmethod
    def _record_json(record: dict, include: tuple[str, ...]) -> dict:
        keep = {"id", "external_id", "fields", "metadata", "status", "dataset_id", "inserted_at", "updated_at", *include}
        return {k: v for k, v in record.items() if k in keep}

    def _list_records(self, user, request, body, dataset_id):
        self._dataset(dataset_id)
        include = tuple(part for value in request.query.getall("include", []) for part in value.split(","))
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 50))
        if not 1 <= limit <= 1000:
            raise ApiError(422, "limit must be between 1 and 1000")
        records = [r for r in self.records.values() if r["dataset_id"] == dataset_id]
        page = records[offset: offset + limit]
        return 200, {"items": [self._record_json(r, include) for r in page], "total": len(records)}

    def _create_response(self, user, request, body, record_id):
        record = self.records.get(record_id)
        if record is None:
            raise ApiError(404, f"Record with id `{record_id}` not found")
        dataset = self._dataset(record["dataset_id"])
        if any(r["user_id"] == user["id"] for r in record["responses"]):
            raise ApiError(409, f"Response already exists for record with id `{record_id}` and by user with id "
                                f"`{user['id']}`")
        status, values = body.get("status"), body.get("values") or {}
        if status not in ("submitted", "discarded", "draft"):
            raise ApiError(422, f"unknown response status {status!r}")
        for name, answer in values.items():
            self._check_value(dataset, self._question(dataset, name=name), answer.get("value"), record["fields"])
        if status == "submitted":
            for question in dataset["questions"]:
                if question["required"] and question["name"] not in values:
                    raise ApiError(422, f"missing response value for required question with name={question['name']!r}")
        response = {"id": str(uuid.uuid4()), "values": values or None, "status": status, "user_id": user["id"],
                    "record_id": record_id, "inserted_at": _now(), "updated_at": _now()}
        record["responses"].append(response)
        submitted = sum(1 for r in record["responses"] if r["status"] == "submitted")
        if record["status"] == "pending" and submitted >= dataset["distribution"]["min_submitted"]:
            record["status"], record["updated_at"] = "completed", _now()  # the server touches the record here
        return 201, response
