"""`surprisal:SMALL`: the passages where the small model itself finds the trace hardest to predict.

The small model reads the problem and the trace once, teacher-forced; a token's signal is its loss
(-log p of the actual next token, in nats) and the steps with the highest mean loss become the
spans (see judges/grounded.py for how steps, coverage, batching and caching work). Cheap: one
forward pass of the small model per trace. Note that `evaluate labels` measures the small model's
loss inside spans, which this judge maximises by construction.
"""

from __future__ import annotations

from splitreason.judges.grounded import GroundedJudge, GroundedSettings, mean


class SurprisalJudge(GroundedJudge):
    backend = "surprisal"

    def __init__(self, name: str, small: str, settings: GroundedSettings):
        super().__init__(name, [small], settings)

    def token_signal(self, scores, positions):
        return [-scores.target_logprob[p] if p >= 0 else 0.0 for p in positions], None

    def describe(self, scores, positions, tokens):
        loss = mean([-scores.target_logprob[positions[k]] for k in tokens if positions[k] >= 0])
        overall = mean([-value for value in scores.target_logprob[max(0, positions[0]):]]) if positions else 0.0
        return f"mean loss {loss:.2f} nats (trace mean {overall:.2f})", loss
