"""The Argilla round trip against a real Argilla server (skipped unless one is given).

    ARGILLA_API_URL=http://localhost:6900 ARGILLA_API_KEY=<owner or admin key> \\
        python -m pytest -m argilla_server tests/test_argilla_live.py
    (optional: ARGILLA_WORKSPACE=<name>, default: the first workspace the key sees)

A test cannot play a person in the UI, so the API user answers one record through the SDK,
with the same request the UI sends. The dataset gets a unique name and is deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from splitreason.io.run_dir import RunDir
from splitreason.review.argilla import QUESTION_DECISION, QUESTION_SPANS
from splitreason.review.argilla_sync import connect, iter_server_records
from splitreason.review.store import ReviewStore
from tests.helpers import cli_env, ok, run_cli

URL, KEY = os.environ.get("ARGILLA_API_URL"), os.environ.get("ARGILLA_API_KEY")
WORKSPACE = os.environ.get("ARGILLA_WORKSPACE")

pytestmark = [
    pytest.mark.argilla_server,
    pytest.mark.skipif(not (URL and KEY), reason="needs a real Argilla server: set ARGILLA_API_URL and ARGILLA_API_KEY"),
]


def u16(text: str, offset: int) -> int:
    return len(text[:offset].encode("utf-16-le")) // 2


def test_push_answer_pull_against_a_real_server(tmp_path: Path) -> None:
    from argilla._models import UserResponseModel

    out = tmp_path / "run"
    ok(run_cli("annotate", "-o", out, "--accept-threshold", "1.0", "--no-progress"))
    in_review = [a for a in RunDir(out).iter_annotations() if a.status == "review"]
    name = f"splitreason-live-{uuid.uuid4().hex[:8]}"
    where = ["--workspace", WORKSPACE] if WORKSPACE else []
    push = ("review", "push", out, "--dataset", name, *where, "--no-progress")
    client = connect(URL, KEY)
    try:
        first = ok(run_cli(*push, env=cli_env()))
        assert f"pushed {len(in_review)} new" in first.stderr
        second = ok(run_cli(*push, env=cli_env()))
        assert f"pushed 0 new, updated {len(in_review)}" in second.stderr
        dataset = client.datasets(name=name, workspace=WORKSPACE or client.workspaces.list()[0])
        records = {r.external_id: r for r in iter_server_records(client, dataset, suggestions=True)}
        assert set(records) == {a.trace_id for a in in_review}

        # answer a trace with characters outside the BMP: keep the judge's first span, add one after an astral char
        note = max(in_review, key=lambda a: sum(ord(c) > 0xFFFF for c in a.trace))
        astral = next(i for i, c in enumerate(note.trace)
                      if ord(c) > 0xFFFF and note.spans[0].end < i < len(note.trace) - 200)
        mine = sorted([(note.spans[0].start, note.spans[0].end), (astral + 1, astral + 30)])
        values = {QUESTION_SPANS: {"value": [{"label": "difficult", "start": u16(note.trace, s),
                                              "end": u16(note.trace, e)} for s, e in mine]},
                  QUESTION_DECISION: {"value": "accept"}}
        client.api.records.create_record_response(
            record_id=records[note.trace_id].id,
            user_response=UserResponseModel(values=values, status="submitted", user_id=client.me.id))

        third = ok(run_cli(*push, env=cli_env()))
        assert "skipped 1 already answered" in third.stderr
        pulled = ok(run_cli("review", "pull", out, "--dataset", name, *where, env=cli_env()))
        assert "pulled 1 review(s) of 1 trace(s) by 1 reviewer(s)" in pulled.stderr
        with ReviewStore.for_run(out) as store:
            (review,) = store.reviews(note.trace_id)
        assert (review.reviewer, review.decision) == (client.me.username, "accepted")
        assert [(s.start, s.end) for s in review.spans] == mine
        assert [s.text for s in review.spans] == [note.trace[s:e] for s, e in mine]
    finally:
        leftover = client.datasets(name=name, workspace=WORKSPACE or client.workspaces.list()[0])
        if leftover is not None:
            leftover.delete()
