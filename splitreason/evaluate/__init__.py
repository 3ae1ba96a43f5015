"""Evaluating models on annotated data and on problems: `evaluate tags` (tag placement,
teacher-forced, evaluate/tags.py), and the offload runs, grading and latency of the offload
evaluator. Heavy imports (torch, transformers) happen inside functions."""
