"""What each model is shown.

The small model gets the prompt it was trained with: the chat template and offload instruction that
`train sft` recorded in its train.json (`--instruction` overrides the instruction); a model without
train.json (the paper's released ones) gets its own template (or the bundled one when it cannot be
used, see models/chat.py) and the export's default instruction. The large model gets the problem
alone under its own chat template (the bundled plain one when it has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from splitreason.schemas.export import user_content

__all__ = ["PromptBuilder", "default_instruction"]


def default_instruction() -> str:
    from splitreason.prompts import template_source

    return template_source("offload_instruction.txt").strip()


@dataclass(frozen=True)
class PromptBuilder:
    """Renders one model's prompt for a problem and encodes it as that model will read it."""

    tokenizer: object
    template: str
    template_source: str
    instruction: str | None

    @classmethod
    def for_small(cls, tokenizer, model: str | None, instruction: str | None) -> PromptBuilder:
        from splitreason.models.chat import choose_chat_template
        from splitreason.schemas.training import TrainRecord

        record = TrainRecord.read(model) if model and Path(model).is_dir() else None
        if record is not None:
            template, source = record.prompt.chat_template, f"train.json ({record.prompt.chat_template_source})"
            recorded = record.prompt.instruction
        else:
            chosen = choose_chat_template(tokenizer)
            template, source, recorded = chosen.text, chosen.source, default_instruction()
        if instruction is not None:
            recorded = instruction or None
        return cls(tokenizer, template, source, recorded)

    @classmethod
    def for_large(cls, tokenizer) -> PromptBuilder:
        from splitreason.prompts import template_source

        own = getattr(tokenizer, "chat_template", None)
        if isinstance(own, dict):
            own = own.get("default")
        if own:
            return cls(tokenizer, own, "model", None)
        return cls(tokenizer, template_source("chat_plain.jinja"), "bundled:plain", None)

    def text(self, problem: str) -> str:
        messages = [{"role": "user", "content": user_content(problem, self.instruction)}]
        return self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False,
                                                  add_generation_prompt=True)

    def ids(self, problem: str) -> list[int]:
        return list(self.tokenizer(self.text(problem), add_special_tokens=False)["input_ids"])
