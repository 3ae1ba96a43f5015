"""Teacher-forced scoring: one forward pass over a known text, and what the model would have
predicted at every position.

Scoring never materialises the full [tokens x vocabulary] logits of a long sequence: the model's
last hidden states are computed once and the output layer is applied to chunks of positions
(`logit_chunks`), so a 16k-token trace of a 150k-vocabulary model costs a few hundred MB, not
tens of GB. Sequences longer than the model's context are scored in overlapping windows
(`windows`), each position once, with at least `overlap` tokens of context before it.

Given a `reference` model sharing the tokenizer, the same pass also reads the sequences with it
(the same windows, the same chunks) and keeps, per position, its prediction and the KL divergence
KL(reference || model) of the two next-token distributions: what the model-grounded judges and
`evaluate labels` compare a small model with a large one by.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["TokenScores", "context_length", "logit_chunks", "score_sequences", "windows"]

DEFAULT_CHUNK = 256


@dataclass
class TokenScores:
    """Per position t (0-based over `ids[1:]`): how the model predicted token t+1 from tokens ≤ t.

    `target_logprob[t]`: log-probability of the actual next token; `greedy_id[t]` /
    `greedy_logprob[t]`: the most likely next token and its log-probability;
    `watched[id][t]`: log-probability of each watched token id (e.g. the tags).
    """

    target_logprob: list[float] = field(default_factory=list)
    greedy_id: list[int] = field(default_factory=list)
    greedy_logprob: list[float] = field(default_factory=list)
    watched: dict[int, list[float]] = field(default_factory=dict)
    #: With a reference model: its own scores of the same positions, and KL(reference || model).
    reference: TokenScores | None = None
    kl: list[float] = field(default_factory=list)

    def extend(self, other: TokenScores) -> None:
        self.target_logprob += other.target_logprob
        self.greedy_id += other.greedy_id
        self.greedy_logprob += other.greedy_logprob
        self.kl += other.kl
        if other.reference is not None:
            if self.reference is None:
                self.reference = TokenScores()
            self.reference.extend(other.reference)
        for token, values in other.watched.items():
            self.watched.setdefault(token, []).extend(values)


def windows(length: int, max_len: int, overlap: int) -> list[tuple[int, int, int]]:
    """Windows `(start, end, first)` over a sequence of `length` tokens, each at most `max_len`
    tokens: the window [start, end) scores the predictions made at positions first .. end-2 (of
    tokens first+1 .. end-1), with at least `overlap` tokens of context before `first`, and every
    position is scored in exactly one window."""
    if max_len < 2:
        raise ValueError("a window needs at least 2 tokens")
    overlap = max(0, min(overlap, max_len - 2))
    if length <= max_len:
        return [(0, length, 0)]
    out = []
    first = 0
    while first < length - 1:
        start = max(0, first - overlap)
        end = min(length, start + max_len)
        out.append((start, end, first))
        first = end - 1
    return out


def _hidden_states(model, input_ids, attention_mask):
    base = model.get_decoder() if hasattr(model, "get_decoder") and model.get_decoder() is not None else None
    if base is None:
        base = getattr(model, model.base_model_prefix)
    outputs = base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return outputs.last_hidden_state if hasattr(outputs, "last_hidden_state") else outputs[0]


def logit_chunks(model, input_ids, attention_mask=None, *, chunk: int = DEFAULT_CHUNK) -> Iterator[tuple[int, object]]:
    """Yield `(start, logits[:, start:start+chunk, :])` in float32 over a batch, one forward pass."""
    import torch

    with torch.no_grad():
        hidden = _hidden_states(model, input_ids, attention_mask)
        head = model.get_output_embeddings()
        for start in range(0, hidden.shape[1], chunk):
            logits = head(hidden[:, start:start + chunk]).float()
            softcap = getattr(model.config, "final_logit_softcapping", None)
            if softcap:
                logits = torch.tanh(logits / softcap) * softcap
            yield start, logits


def context_length(model) -> int:
    """The most tokens the model reads at once (its position embeddings; 4096 when it does not say)."""
    return int(getattr(model.config, "max_position_embeddings", 0) or 4096)


def score_sequences(model, sequences: Sequence[Sequence[int]], *, watch: Sequence[int] = (),
                    batch_size: int = 8, max_len: int | None = None, overlap: int = 256,
                    chunk: int = DEFAULT_CHUNK, pad_id: int = 0, reference=None) -> list[TokenScores]:
    """Teacher-force every sequence; long ones in windows of `max_len` (default: the model's
    context, the shorter of the two with a `reference`). Returns one `TokenScores` per sequence,
    of length len(sequence) - 1; with a `reference` (a model with the same vocabulary), each also
    holds the reference's scores and the per-position KL(reference || model)."""
    import torch

    device = next(model.parameters()).device
    if max_len is None:
        max_len = context_length(model)
        if reference is not None:
            max_len = min(max_len, context_length(reference))
    pieces: list[tuple[int, int, int, int]] = []  # (sequence, start, end, first_scored)
    for index, ids in enumerate(sequences):
        for start, end, first in windows(len(ids), max_len, overlap):
            pieces.append((index, start, end, first))
    results = [TokenScores(watched={token: [] for token in watch}) for _ in sequences]
    partial: dict[int, list[tuple[int, TokenScores]]] = {}
    order = sorted(range(len(pieces)), key=lambda i: pieces[i][2] - pieces[i][1])  # similar lengths batch well
    for batch_start in range(0, len(order), batch_size):
        batch = [pieces[i] for i in order[batch_start:batch_start + batch_size]]
        width = max(end - start for _, start, end, _ in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (seq, start, end, _) in enumerate(batch):
            ids[row, : end - start] = torch.tensor(list(sequences[seq][start:end]), dtype=torch.long)
            mask[row, : end - start] = 1
        ids, mask = ids.to(device), mask.to(device)
        collected = [TokenScores(watched={token: [] for token in watch},
                                 reference=TokenScores() if reference is not None else None) for _ in batch]
        reference_chunks = (logit_chunks(reference, ids.to(next(reference.parameters()).device), mask.to(
            next(reference.parameters()).device), chunk=chunk) if reference is not None else None)
        for offset, logits in logit_chunks(model, ids, mask, chunk=chunk):
            logprobs = torch.log_softmax(logits, dim=-1)
            greedy_lp, greedy_id = logprobs.max(dim=-1)
            if reference_chunks is not None:
                ref_logprobs = torch.log_softmax(next(reference_chunks)[1].to(logits.device), dim=-1)
                if ref_logprobs.shape[-1] != logprobs.shape[-1]:  # an output layer padded past the vocabulary
                    width = min(ref_logprobs.shape[-1], logprobs.shape[-1])
                    ref_logprobs, logprobs = ref_logprobs[..., :width], logprobs[..., :width]
                ref_greedy_lp, ref_greedy_id = ref_logprobs.max(dim=-1)
                kl = (ref_logprobs.exp() * (ref_logprobs - logprobs)).sum(-1).clamp_min(0.0)
            for row, (seq, start, end, first) in enumerate(batch):
                # position p in the window predicts token p+1; keep predictions of tokens first+1..end-1
                lo = max(offset, first - start)
                hi = min(offset + logits.shape[1], end - start - 1)
                if hi <= lo:
                    continue
                local = slice(lo - offset, hi - offset)
                targets = ids[row, lo + 1: hi + 1]
                part = collected[row]
                part.target_logprob += logprobs[row, local].gather(-1, targets[:, None]).squeeze(-1).tolist()
                part.greedy_id += greedy_id[row, local].tolist()
                part.greedy_logprob += greedy_lp[row, local].tolist()
                for token in watch:
                    part.watched[token] += logprobs[row, local, token].tolist()
                if reference_chunks is not None:
                    ref = part.reference
                    ref.target_logprob += ref_logprobs[row, local].gather(-1, targets[:, None]).squeeze(-1).tolist()
                    ref.greedy_id += ref_greedy_id[row, local].tolist()
                    ref.greedy_logprob += ref_greedy_lp[row, local].tolist()
                    part.kl += kl[row, local].tolist()
        for row, (seq, start, _end, _first) in enumerate(batch):
            partial.setdefault(seq, []).append((start, collected[row]))
    for seq, parts in partial.items():
        for _, part in sorted(parts, key=lambda item: item[0]):
            results[seq].extend(part)
    return results
