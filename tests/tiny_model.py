"""Build a tiny random Llama causal LM plus a locally trained tokenizer (no download).

Used by the vLLM tests (and usable by any test that needs a real HF-format model):

    from tests.tiny_model import build_tiny_model
    build_tiny_model(tmp_path / "tiny")

or, from another interpreter (e.g. the vLLM venv, which has torch+transformers):

    .venv-vllm/bin/python tests/tiny_model.py DEST

The folder holds config.json, model.safetensors, generation_config.json, tokenizer.json,
tokenizer_config.json (with a ChatML-like chat template) and special_tokens_map.json.

Pitfall: `AutoTokenizer.from_pretrained(dest)` may pick a different tokenizer class
because config.json says "llama"; load the tokenizer with
`PreTrainedTokenizerFast.from_pretrained(dest)` (vLLM itself loads it fine).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HIDDEN_SIZE = 128
NUM_HEADS = 4  # head_dim 32: vLLM's CPU attention rejects head_dim 16
NUM_LAYERS = 2
INTERMEDIATE_SIZE = 256
VOCAB_SIZE = 512
MAX_POSITIONS = 8192
SEED = 1234

BOS = "<|startoftext|>"
EOS = "<|im_end|>"
IM_START = "<|im_start|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, BOS, IM_START, EOS]

# Qwen/ChatML-like template. add_generation_prompt opens an assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS_LINES = [
    # math / LaTeX-ish reasoning
    r"Let $x^2 + 3x - 4 = 0$. Then $(x+4)(x-1) = 0$, so $x = -4$ or $x = 1$.",
    r"We compute \frac{a}{b} + \frac{c}{d} = \frac{ad + bc}{bd} for b, d \neq 0.",
    r"By the Pythagorean theorem, $a^2 + b^2 = c^2$; with a = 3, b = 4 we get c = 5.",
    r"\sum_{k=1}^{n} k = \frac{n(n+1)}{2}, and \int_0^1 x^2 \, dx = \frac{1}{3}.",
    r"Wait, let me re-check: 17 \times 23 = 391, since 17 \times 20 = 340 and 17 \times 3 = 51.",
    r"Hmm, the derivative of \sin(x) is \cos(x), so f'(\pi) = \cos(\pi) = -1.",
    r"Therefore the answer is \boxed{42}. \sqrt{16} = 4, \log_2 8 = 3, 2^{10} = 1024.",
    r"If n \equiv 2 \pmod{5} then n^2 \equiv 4 \pmod{5}; the probability is 1/6 \approx 0.1667.",
    "Step 1: factor the polynomial. Step 2: solve each factor. Step 3: verify the roots.",
    "The matrix [[1, 2], [3, 4]] has determinant 1*4 - 2*3 = -2 and trace 5.",
    "<think>\nOkay, so I need to find the smallest prime p such that p + 2 is also prime.\n</think>",
    "<bigmodel>This is the difficult step.</bigmodel> The rest is routine algebra.",
    # JSON the judge is asked to produce
    '{"spans": [{"text": "17 \\times 23 = 391", "reason": "arithmetic"}]}',
    '{"spans": [{"text": "x = -4", "reason": "sign error risk"}, {"text": "c = 5", "reason": "check"}]}',
    '{"spans": []}',
    '{"text": "a^2 + b^2", "reason": "key step", "start": 12, "end": 40}',
    '[{"text": "...", "reason": "..."}, {"text": "\\frac{1}{3}", "reason": "integral"}]',
    # plain English
    "You are a careful judge. Quote the difficult spans of the reasoning trace verbatim.",
    "The quick brown fox jumps over the lazy dog. 0123456789 !?.,;:'\"()[]{}<>+-*/=_^\\|&%$#@~`",
]


def _corpus() -> str:
    return "\n".join(_CORPUS_LINES * 8) + "\n"


def _train_tokenizer(text_file: Path, vocab_size: int = VOCAB_SIZE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(text_file)], trainer)
    return tok


def build_tiny_model(dest: Path, *, corpus: str | None = None, chat_template: str | None = CHAT_TEMPLATE,
                     vocab_size: int = VOCAB_SIZE) -> Path:
    """Build the tiny model and tokenizer into ``dest`` (created if needed); return it.

    `corpus`: the text the tokenizer is trained on (default: a mix of math, JSON and English);
    `chat_template=None` leaves the tokenizer without one (as a base model's)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    text_file = dest / "tokenizer_corpus.txt"
    text_file.write_text(_corpus() if corpus is None else corpus, encoding="utf-8")
    raw = _train_tokenizer(text_file, vocab_size)
    text_file.unlink()

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=None,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(dest)
    # transformers 5 writes tokenizer_class "TokenizersBackend", which 4.x cannot resolve;
    # "PreTrainedTokenizerFast" loads the same tokenizer.json under both.
    tok_cfg_path = dest / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text(encoding="utf-8"))
    tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2) + "\n", encoding="utf-8")

    vocab_size = len(tokenizer)  # trained vocab incl. specials (<= VOCAB_SIZE)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS),
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
        torch_dtype="float32",
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.bos_token_id = config.bos_token_id
    model.save_pretrained(dest, safe_serialization=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python tests/tiny_model.py DEST", file=sys.stderr)
        return 2
    out = build_tiny_model(Path(argv[0]))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
