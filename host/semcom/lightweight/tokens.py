"""The JTCC token link's encoder made small: magnitude pruning and int8, scored by the agents' VQA accuracy.

The shipped token pipeline (``host/semcom/agents/checkpoints/tokens_jtcc``: sensor -> JTCC -> channel ->
frozen receiver) keeps everything but the JTCC encoder (LayerNorm -> Linear 128x256 -> GELU -> Linear
256x16 -> power normalisation). That encoder is pruned (global L1 over its two Linear weights, no
fine-tuning: retraining would need the agents' training stages) or quantized with
``torch.ao.quantization.quantize_dynamic`` (int8 weights, activations quantized per batch on the fly;
LayerNorm, GELU and the power normalisation stay fp32). No training is involved, so each accuracy is one
evaluation on a fixed set of test questions and channel draws; its spread is the binomial standard
error sqrt(p (1 - p) / n).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.ao import quantization as tq
from torch.nn.utils import prune

from semcom.channels import named_channel
from semcom.progress import progress_bar
from semcom.results import plot_label, save_figure

from . import compress as C

TOKENS = Path(__file__).resolve().parents[1] / "agents" / "checkpoints" / "tokens_jtcc"


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def prune_linears(encoder: nn.Module, amount: float) -> nn.Module:
    """Zero the fraction ``amount`` of the smallest |w| over all Linear weights (global L1), folded in."""
    enc = copy.deepcopy(encoder)
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"pruning amount must be in [0, 1), got {amount}")
    if amount > 0:
        prune.global_unstructured([(m, "weight") for m in linears(enc)], pruning_method=prune.L1Unstructured,
                                  amount=amount)
    return C.make_permanent(enc)


def int8_dynamic(encoder: nn.Module) -> nn.Module:
    """int8 Linear layers (dynamic activation quantization); the other layers stay fp32."""
    torch.backends.quantized.engine = C.ENGINE
    with C.quiet_quantization():
        return tq.quantize_dynamic(copy.deepcopy(encoder).eval(), {nn.Linear}, dtype=torch.qint8)


def token_variants(encoder: nn.Module, sparsities: tuple[float, ...]) -> list[tuple[float, str, nn.Module]]:
    """(pruned fraction, bits, JTCC encoder): the pruning sweep in fp32, then fp16 and int8 of the
    unpruned and of the 50 %-pruned encoder."""
    out = [(a, "fp32", prune_linears(encoder, a)) for a in sparsities]
    for a in (0.0, 0.5):
        out.append((a, "fp16", C.fp16_round_trip(prune_linears(encoder, a))))
        out.append((a, "int8", int8_dynamic(prune_linears(encoder, a))))
    return out


def jtcc_sweep(n_questions: int, snrs: tuple[float, ...], channels: tuple[str, ...],
               sparsities: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.9), checkpoint: str | Path = TOKENS,
               out_dir: str | Path | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """VQA accuracy of the token pipeline with each compressed JTCC encoder -> rows (one per variant,
    channel, SNR) with params, non-zero params, encoder file bytes, MACs per token."""
    from semcom.agents.checkpoint import load_pipeline
    from semcom.agents.experiment import AgentsExperiment, make_data
    from semcom.agents.train import evaluate_pipeline

    from .checkpoint import encoder_file_bytes

    pipeline, doc = load_pipeline(checkpoint)
    exp = AgentsExperiment.from_dict(doc["meta"]["experiment"])   # its test split, never trained on
    test = make_data(exp, progress=progress, pretrain=False).test.subset(n_questions)
    original = pipeline.link.encoder
    probe = torch.zeros(1, pipeline.link.d)
    tmp = Path(out_dir) if out_dir is not None else Path(".")
    rows: list[dict[str, Any]] = []
    chans = {name: named_channel(name, seed=1) for name in channels}
    for amount, bits, enc in progress_bar(token_variants(original, sparsities), desc="JTCC variants",
                                          progress=progress):
        pipeline.link.encoder = enc
        total, nonzero = C.count_params(enc)
        _, macs = C.count_macs(enc, probe)
        for name, ch in chans.items():
            for snr in snrs:
                acc = float(evaluate_pipeline(pipeline, test, ch, snr, seed=1)["all"])
                rows.append({"method": "magnitude", "amount": amount, "bits": bits, "channel": name,
                             "snr_db": snr, "accuracy": round(acc, 4),
                             "accuracy_se": round(math.sqrt(acc * (1 - acc) / len(test)), 4),
                             "n_questions": len(test), "params": total, "nonzero_params": nonzero,
                             "encoder_bytes": encoder_file_bytes(enc, bits, tmp),
                             "nonzero_macs_per_token": macs})
    pipeline.link.encoder = original
    return rows


def plot_tokens(path: Path, rows: list[dict[str, Any]]) -> None:
    """Accuracy vs pruned fraction (fp32) per channel and SNR, with the fp16 / int8 points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    for key in dict.fromkeys((r["channel"], r["snr_db"]) for r in rows):
        pts = sorted((r["amount"] * 100, r["accuracy"], r["accuracy_se"]) for r in rows
                     if (r["channel"], r["snr_db"], r["bits"]) == (*key, "fp32"))
        a, acc, se = zip(*pts, strict=True)
        line = ax.errorbar(a, acc, yerr=se, fmt="-o", ms=4, capsize=2,
                           label=f"fp32, {plot_label(key[0])} {key[1]:g} dB")
        for bits, marker in (("fp16", "s"), ("int8", "^")):
            q = [(r["amount"] * 100, r["accuracy"]) for r in rows if (r["channel"], r["snr_db"], r["bits"])
                 == (*key, bits)]
            ax.plot(*zip(*q, strict=True), marker, color=line[0].get_color(), ms=7, mfc="none",
                    label=f"{bits}, {plot_label(key[0])} {key[1]:g} dB")
    ax.set_xlabel("pruned fraction of the JTCC encoder's Linear weights (%), no fine-tuning")
    ax.set_ylabel("VQA accuracy")
    ax.set_title("JTCC token link: accuracy vs sparsity and bit width (± binomial s.e.)", fontsize=9)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    save_figure(fig, path)
