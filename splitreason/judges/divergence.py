"""`divergence:SMALL,LARGE`: the passages where the small model's prediction departs from the large
model's, as in R2R (Roads to Rome), which routes such tokens to the large model.

Both models read the problem and the trace, teacher-forced, in the same windows (one forward pass
each per batch). A token's signal is, by default (`--divergence greedy`), whether the small
model's most likely next token differs from the large model's, weighted by the large model's
confidence in its own (its probability); with `--divergence kl` it is KL(large || small) of the
two next-token distributions, in nats. Steps with the highest mean signal become the spans
(judges/grounded.py); where the signal ties (most tokens agree) the small model's excess loss
over the large one orders them. Both models must share a tokenizer: the judge refuses two
vocabularies in one line when it starts.
"""

from __future__ import annotations

import math

from splitreason.judges.grounded import GroundedJudge, GroundedSettings, mean


class DivergenceJudge(GroundedJudge):
    backend = "divergence"

    def __init__(self, name: str, small: str, large: str, settings: GroundedSettings):
        super().__init__(name, [small, large], settings)

    def setting_params(self):
        return {**super().setting_params(), "divergence": self.settings.divergence}

    @staticmethod
    def _excess(scores, p: int) -> float:
        """The small model's loss above the large model's on the actual next token (its positive part)."""
        return max(0.0, scores.reference.target_logprob[p] - scores.target_logprob[p]) if p >= 0 else 0.0

    def _value(self, scores, p: int) -> float:
        if p < 0:
            return 0.0
        if self.settings.divergence == "kl":
            return scores.kl[p]
        reference = scores.reference
        return math.exp(reference.greedy_logprob[p]) if scores.greedy_id[p] != reference.greedy_id[p] else 0.0

    def token_signal(self, scores, positions):
        return [self._value(scores, p) for p in positions], [self._excess(scores, p) for p in positions]

    def describe(self, scores, positions, tokens):
        points = [positions[k] for k in tokens if positions[k] >= 0]
        excess = mean([self._excess(scores, p) for p in points])
        strength = mean([self._value(scores, p) for p in points])
        if self.settings.divergence == "kl":
            return f"mean excess loss {excess:.2f} nats; mean KL(large||small) {strength:.2f} nats", strength
        differ = sum(1 for p in points if scores.greedy_id[p] != scores.reference.greedy_id[p])
        return (f"mean excess loss {excess:.2f} nats; small's next token differs from large's on {differ} of "
                f"{len(points)} tokens (weighted {strength:.2f})"), strength
