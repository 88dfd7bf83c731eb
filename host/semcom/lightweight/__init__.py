"""Lightweight codecs for edge agents (seed 000, section III-B): pruning, int8 quantization, distillation."""
