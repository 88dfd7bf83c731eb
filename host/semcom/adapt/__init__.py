"""Semantic adaptive transmission (seed 000, section III-A): channel captures, a conditional-GAN channel
learned from them, and online fine-tuning of a codec while the SNR drops."""
