"""Semantic self-evolution (seed 000, section III-C): a multi-cell agent network and distributed
multi-timescale hierarchical DRL for beams, power and compression."""
