"""What kind of judge marked a trace, said once for every place that tells the user.

The heuristic judge is fixed rules for trying the pipeline offline. Measured on real reasoning
traces against a trained offload model's own choices, its passages overlap them barely above
chance, yet it accepts every trace at high confidence: confidence measures how well a judge's
quotes align with the trace (the heuristic quotes the trace itself, so always perfectly), not
whether the right steps were chosen. `splitreason judges`, the annotate summary and export say so.
"""

from __future__ import annotations

from collections.abc import Iterable

from splitreason.schemas import JudgeInfo

__all__ = ["HEURISTIC", "HEURISTIC_NOTE", "MODEL_GROUNDED", "judge_kind"]

#: The export metadata's `judge_kind` for the heuristic judge.
HEURISTIC = "offline heuristic"
#: ... and for the judges that mark where a model itself struggles (surprisal:, divergence:).
MODEL_GROUNDED = "model-grounded"
_KINDS = {"heuristic": HEURISTIC, "openai": "llm", "anthropic": "llm", "vllm": "llm",
          "surprisal": MODEL_GROUNDED, "divergence": MODEL_GROUNDED}

#: One line, wherever the heuristic judge's work is shown.
HEURISTIC_NOTE = ("heuristic is fixed rules for trying the pipeline offline: on real traces its passages match a "
                  "trained offload model's own choices barely above chance, and its high confidence only means its "
                  "quotes align with the trace, not that it chose the right steps")


def judge_kind(judges: Iterable[JudgeInfo]) -> str:
    """"offline heuristic", "llm", "model-grounded", or the backend name; several judges' kinds joined with " + "."""
    kinds = sorted({_KINDS.get(info.backend, info.backend) for info in judges})
    return " + ".join(kinds)
