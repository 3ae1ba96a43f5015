"""Exports of annotated runs: SFT-ready JSONL (and Hugging Face datasets)."""
