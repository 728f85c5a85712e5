"""Scoring: the CLIP-IQA image-quality scorer, run with ONNX Runtime (no torch at run time)."""
