"""Perception-aware partial sampling with receiver feedback (seed 000, section III-B, case study IV-B)."""
