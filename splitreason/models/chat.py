"""A conversation as the model sees it: which chat template, and the token ids of one row with
the prompt/reply boundary and every tagged span located in tokens.

The template: the model's own when it keeps the assistant's reply whole (reasoning and tags);
a bundled one when the tokenizer has none (`prompts/chat_plain.jinja`) or its template drops
the reasoning, as DeepSeek-R1-Distill's does (`prompts/chat_r1_distill.jinja`); or a file the
user names. The check renders a probe conversation and looks for the reply in the output.

Encoding renders the prompt with the generation prompt, and the whole conversation; the
prompt's text must be a prefix of the whole. The prompt and the reply are tokenized apart and
joined, exactly as at inference (the prompt is tokenized, the model writes the rest), so the
ids trained on are the ids the model will see. The learned part is the reply through its end
of turn (the EOS token); whatever the template writes after that is context only.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.models import ModelError
from splitreason.schemas.export import TagSpan

__all__ = ["ChatTemplate", "EncodedRow", "TokenSpan", "choose_chat_template", "encode_row", "keeps_reply"]

_PROBE_REPLY = (f"<think>\nFirst the easy part. {OPEN_TAG}Then the hard step, 17 * 23 = 391.{CLOSE_TAG} "
                "So it holds.\n</think>\n\nThe answer is 391.")
_PROBE = [{"role": "user", "content": "What is 17 * 23?"}, {"role": "assistant", "content": _PROBE_REPLY}]


@dataclass(frozen=True)
class ChatTemplate:
    """The template a model is trained and prompted with, and where it came from
    (`model`, `bundled:plain`, `bundled:r1_distill`, `file:PATH`) and why."""

    text: str
    source: str
    reason: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenSpan:
    """A tagged span in tokens (indices into the row's ids): the open tag's first token, the first
    token of the offloaded text, the close tag's first token, and the token after the close tag."""

    open_at: int
    start: int
    close_at: int
    after: int


@dataclass(frozen=True)
class EncodedRow:
    """One conversation in ids: `ids[:prompt_len]` is the prompt, `ids[prompt_len:learned_end]`
    the reply the model learns (with both tags and the end of turn), and `spans` its tagged
    spans in tokens."""

    ids: list[int]
    prompt_len: int
    learned_end: int
    spans: tuple[TokenSpan, ...]

    def labels(self) -> list[int]:
        """Training labels: the reply's ids, -100 (ignored) everywhere else."""
        return [token if self.prompt_len <= index < self.learned_end else -100 for index, token in enumerate(self.ids)]

    def truncated(self, max_length: int) -> EncodedRow:
        """The first `max_length` ids; spans cut by the end are dropped."""
        kept = tuple(span for span in self.spans if span.after <= max_length)
        return EncodedRow(self.ids[:max_length], min(self.prompt_len, max_length),
                          min(self.learned_end, max_length), kept)


def _template_of(tokenizer) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template or None


def _render(tokenizer, template: str, messages, *, add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), chat_template=template, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def keeps_reply(tokenizer, template: str) -> str | None:
    """None when `template` renders an assistant reply whole and the prompt as a prefix of the
    conversation; otherwise what it does wrong."""
    try:
        whole = _render(tokenizer, template, _PROBE, add_generation_prompt=False)
        prompt = _render(tokenizer, template, _PROBE[:1], add_generation_prompt=True)
    except Exception as error:  # jinja2 errors, a template that raises on purpose
        return f"it fails to render a conversation ({' '.join(str(error).split())[:160]})"
    if _PROBE_REPLY not in whole:
        return "it drops or changes the assistant's reasoning"
    if not whole.startswith(prompt):
        return "the prompt it renders alone is not the start of the conversation it renders"
    return None


def choose_chat_template(tokenizer, template_file: Path | None = None) -> ChatTemplate:
    """The template to train with (see the module docstring); `ModelError` when a named file is
    unreadable or unusable."""
    from splitreason.prompts import template_source

    if template_file is not None:
        path = Path(template_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ModelError(f"cannot read chat template {path}: {getattr(error, 'strerror', None) or error}") from None
        problem = keeps_reply(tokenizer, text)
        if problem:
            raise ModelError(f"chat template {path} cannot be trained with: {problem}")
        return ChatTemplate(text, f"file:{path}", "given with --chat-template")
    own = _template_of(tokenizer)
    if own is None:
        return ChatTemplate(template_source("chat_plain.jinja"), "bundled:plain", "the tokenizer has no chat template")
    problem = keeps_reply(tokenizer, own)
    if problem is None:
        return ChatTemplate(own, "model", "the model's own template keeps the reasoning")
    if "<｜Assistant｜>" in own:
        return ChatTemplate(template_source("chat_r1_distill.jinja"), "bundled:r1_distill",
                            f"the model's template cannot be trained with: {problem}")
    return ChatTemplate(template_source("chat_plain.jinja"), "bundled:plain",
                        f"the model's template cannot be trained with: {problem}")


def render_prompt(tokenizer, template: ChatTemplate, prompt: Sequence) -> str:
    """The prompt's text, ending with the generation prompt (where the model starts writing)."""
    return _render(tokenizer, template.text, [_as_dict(m) for m in prompt], add_generation_prompt=True)


def encode_row(tokenizer, template: ChatTemplate, prompt: Sequence, reply: str,
               spans: Sequence[TagSpan]) -> EncodedRow:
    """Ids of `prompt` + `reply` under `template`, the learned range, and `spans` (character
    positions in `reply`, from `schemas.export.tagged_spans`) located in tokens."""
    messages = [_as_dict(m) for m in prompt]
    prompt_text = render_prompt(tokenizer, template, messages)
    whole = _render(tokenizer, template.text, [*messages, {"role": "assistant", "content": reply}],
                    add_generation_prompt=False)
    if not whole.startswith(prompt_text):
        raise ModelError(f"chat template ({template.source}) renders the prompt differently alone; "
                         "pass --chat-template FILE")
    rest = whole[len(prompt_text):]
    at = rest.find(reply)
    if at < 0:
        raise ModelError(f"chat template ({template.source}) changes the assistant's reply; pass --chat-template FILE")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    encoded = tokenizer(rest, add_special_tokens=False, return_offsets_mapping=True)
    rest_ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    starts = [start for start, _ in offsets]
    base = len(prompt_ids)

    def token_at(char: int) -> int:
        """Index (in the whole row) of the token covering character `char` of `rest`."""
        return base + max(0, bisect_right(starts, char) - 1)

    token_spans = tuple(
        TokenSpan(token_at(at + span.open_at), token_at(at + span.start), token_at(at + span.end),
                  token_at(at + span.close_end - 1) + 1)
        for span in spans)
    learned_end = base + len(rest_ids)
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and eos in rest_ids:
        learned_end = base + len(rest_ids) - rest_ids[::-1].index(eos)
    return EncodedRow(prompt_ids + rest_ids, base, learned_end, token_spans)


def _as_dict(message) -> dict:
    return message if isinstance(message, dict) else {"role": message.role, "content": message.content}
