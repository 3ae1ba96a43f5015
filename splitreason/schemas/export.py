"""An export row as the trainer and the evaluators read it back, and what a valid tagged reply is.

`splitreason export` writes one of two shapes (exports/sft.py):

    {"id": …, "messages": [{"role": "user", …}, {"role": "assistant", …}], "metadata": {…}}
    {"id": …, "prompt": [{"role": "user", …}], "completion": [{"role": "assistant", …}], "metadata": {…}}

Both become one `ExportRow`: the conversation before the reply (`prompt`) and the reply to learn
(`completion`, the last assistant turn). A reply's tags must be balanced, not nested and not
empty (`tagged_spans`); where they are, the reply is exactly the trace with its spans wrapped.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from splitreason import CLOSE_TAG, OPEN_TAG

__all__ = ["ChatMessage", "ExportRow", "RowProblem", "TagSpan", "tagged_spans", "user_content"]

ExportShape = Literal["messages", "prompt-completion"]


def user_content(problem: str, instruction: str | None) -> str:
    """The user turn of an export row: the problem, a blank line, the offload instruction."""
    return f"{problem.rstrip()}\n\n{instruction}" if instruction else problem


class RowProblem(ValueError):
    """What is wrong with one row, in a few words (the reader adds the file and line)."""


class TagSpan(NamedTuple):
    """Character positions of one tagged span in a reply: the open tag starts at `open_at`, the
    offloaded text is [start, end), the close tag ends at `close_end`."""

    open_at: int
    start: int
    end: int
    close_end: int


def tagged_spans(text: str) -> list[TagSpan]:
    """The spans of a tagged reply, or `RowProblem` naming the first fault: a close with no open
    ("unbalanced"), an open inside a span ("nested"), an open never closed ("unbalanced"), or a
    span with nothing but whitespace inside ("empty")."""
    spans: list[TagSpan] = []
    cursor = 0
    while True:
        opened = text.find(OPEN_TAG, cursor)
        closed = text.find(CLOSE_TAG, cursor)
        if opened < 0 and closed < 0:
            return spans
        if opened < 0 or 0 <= closed < opened:
            raise RowProblem(f"unbalanced tags: {CLOSE_TAG} with no {OPEN_TAG} before it (character {closed})")
        start = opened + len(OPEN_TAG)
        closed = text.find(CLOSE_TAG, start)
        reopened = text.find(OPEN_TAG, start)
        if closed < 0:
            raise RowProblem(f"unbalanced tags: {OPEN_TAG} at character {opened} is never closed")
        if 0 <= reopened < closed:
            raise RowProblem(f"nested tags: {OPEN_TAG} at character {reopened} inside the span opened at {opened}")
        if not text[start:closed].strip():
            raise RowProblem(f"empty span: {OPEN_TAG}{CLOSE_TAG} with nothing inside at character {opened}")
        spans.append(TagSpan(opened, start, closed, closed + len(CLOSE_TAG)))
        cursor = closed + len(CLOSE_TAG)


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="What they say.")


class ExportRow(BaseModel):
    """One training or evaluation example, whichever export shape it was read from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="The row's id (the trace id in splitreason's exports).")
    prompt: tuple[ChatMessage, ...] = Field(description="The turns before the reply: the problem and the offload instruction.")
    completion: str = Field(description="The reply to learn: the reasoning with its hard steps in tags.")
    shape: ExportShape = Field(description="Which export shape the row was written in.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="The export's metadata, as written.")

    @property
    def user_text(self) -> str:
        """The last user turn: the problem, then the offload instruction."""
        return next((m.content for m in reversed(self.prompt) if m.role == "user"), "")

    @property
    def problem_key(self) -> str:
        """Rows of one problem share their prompt; the held-out split never divides them."""
        return "\x1f".join(f"{m.role}\x1e{m.content}" for m in self.prompt)

    def spans(self) -> list[TagSpan]:
        return tagged_spans(self.completion)

    @classmethod
    def from_json(cls, value: Any) -> ExportRow:
        """Read either export shape; `RowProblem` says in a few words what is missing or wrong."""
        if not isinstance(value, dict):
            raise RowProblem(f"a row must be a JSON object, not {type(value).__name__}")
        if "messages" in value:
            shape: ExportShape = "messages"
            turns = _turns(value["messages"], "messages")
            if not turns or turns[-1].role != "assistant":
                raise RowProblem("messages must end with the assistant's reply")
            prompt, reply = turns[:-1], turns[-1]
        elif "prompt" in value and "completion" in value:
            shape = "prompt-completion"
            prompt = _turns(value["prompt"], "prompt")
            completion = _turns(value["completion"], "completion")
            if len(completion) != 1 or completion[0].role != "assistant":
                raise RowProblem("completion must be one assistant turn")
            reply = completion[0]
        else:
            raise RowProblem(f"not an export row: no 'messages' and no 'prompt'/'completion' "
                             f"(keys: {', '.join(sorted(map(str, value))[:6]) or 'none'})")
        if not any(turn.role == "user" for turn in prompt):
            raise RowProblem("no user turn before the reply")
        if not reply.content.strip():
            raise RowProblem("the assistant's reply is empty")
        row_id = value.get("id")
        if not isinstance(row_id, (str, int)) or isinstance(row_id, bool) or str(row_id) == "":
            raise RowProblem("no 'id' (a string) in the row")
        metadata = value.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise RowProblem("'metadata' must be an object")
        return cls(id=str(row_id), prompt=tuple(prompt), completion=reply.content, shape=shape, metadata=metadata)


def _turns(value: Any, name: str) -> list[ChatMessage]:
    if not isinstance(value, list):
        raise RowProblem(f"'{name}' must be a list of turns, not {type(value).__name__}")
    turns = []
    for index, turn in enumerate(value):
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            raise RowProblem(f"{name}[{index}] must be an object with a string 'content'")
        if turn.get("role") not in ("system", "user", "assistant"):
            raise RowProblem(f"{name}[{index}] has role {turn.get('role')!r} (system, user or assistant)")
        turns.append(ChatMessage(role=turn["role"], content=turn["content"]))
    return turns
