"""Judges mark difficult spans. One protocol (base.Judge), one small module per backend."""
