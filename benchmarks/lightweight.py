#!/usr/bin/env python3
"""CPU latency per image of the compressed DeepJSCC encoders against the fp32 teacher, in one run.

    .venv/bin/python benchmarks/lightweight.py            # full run (about a minute on 2 cores)
    .venv/bin/python benchmarks/lightweight.py --quick    # smoke run

The encoders are the compressed checkpoints that `semcom lightweight` saved
(`experiments/lightweight/output/checkpoints/`), plus variants built here from the teacher where timing
does not depend on training (fp16 compute, 50 % magnitude-pruned dense weights). Every repeat times every
encoder once, in turn, at batch 1 and batch 32 (torch threads = 1, the edge's one core), so load from
other jobs hits them alike; the medians and their ratios to the fp32 teacher go to
benchmarks/results/lightweight.{csv,md}. Not part of the tests.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from semcom.jscc.checkpoint import load_checkpoint
from semcom.jscc.experiment import load_images
from semcom.lightweight import compress as C
from semcom.lightweight.checkpoint import load_codec
from semcom.lightweight.experiment import TEACHER
from semcom.progress import progress_bar
from semcom.results import write_csv

RESULTS = Path(__file__).resolve().parent / "results"
CHECKPOINTS = Path(__file__).resolve().parents[1] / "experiments" / "lightweight" / "output" / "checkpoints"


def encoders(checkpoints: Path) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]]:
    """name -> (function timed on a float32 batch, the module whose MACs are counted)."""
    teacher, _ = load_checkpoint(TEACHER)
    base = teacher.encoder.eval()
    half = copy.deepcopy(base).half()
    out: dict[str, tuple[Callable, nn.Module]] = {
        "teacher fp32": (base, base),
        "teacher fp16 compute": (lambda x: half(x.half()), base),
        "magnitude 50% fp32 (dense zeros)": (C.plain_copy(C.magnitude_prune(copy.deepcopy(base), 0.5)),) * 2,
    }
    for name in ("int8_ptq", "int8_qat", "structured50_fp32", "structured50_int8", "student_int8"):
        if (checkpoints / f"{name}.json").is_file():
            enc = load_codec(checkpoints / name)[0].encoder
            out[name.replace("_", " ")] = (enc, enc)
    # the channel-pruned 25 % + int8 encoder (no checkpoint shipped): an untrained stand-in of the same
    # architecture times the same (dense kernels do not look at the values)
    cal = load_images("photos", 128, 1000, "train")
    small25 = C.compact(C.channel_prune(copy.deepcopy(base), 0.25))
    out["structured25 fp32 (same architecture)"] = (small25, small25)
    out["structured25 int8 (same architecture)"] = (C.quantize_ptq(small25, cal),) * 2
    if "int8 ptq" not in out:   # no experiment run yet: the untrained counterparts time the same
        out["int8 ptq"] = (C.quantize_ptq(base, cal),) * 2
        small = C.compact(C.channel_prune(copy.deepcopy(base), 0.5))
        out["structured50 fp32"] = (small, small)
        out["structured50 int8"] = (C.quantize_ptq(small, cal),) * 2
    return out


@torch.no_grad()
def measure(fns: dict[str, Callable], x: torch.Tensor, batch: int, repeats: int, progress: bool
            ) -> dict[str, tuple[float, float]]:
    """(median, minimum) seconds per image over ``repeats`` interleaved rounds (every encoder once per
    round). On a machine shared with other jobs the minimum is the less disturbed estimate."""
    xb = x[:batch]
    for fn in fns.values():   # warm-up (packing, allocator)
        fn(xb)
        fn(xb)
    times: dict[str, list[float]] = {k: [] for k in fns}
    inner = max(1, 64 // batch)   # several calls per sample at batch 1: timer resolution and jitter
    for _ in progress_bar(range(repeats), desc=f"batch {batch}", progress=progress):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn(xb)
            times[name].append((time.perf_counter() - t0) / (inner * batch))
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few repeats, for a smoke run")
    p.add_argument("--checkpoints", default=str(CHECKPOINTS))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    repeats = 5 if args.quick else 41
    x = load_images("photos", 32, 0, "test")
    named = encoders(Path(args.checkpoints))
    fns = {k: v[0] for k, v in named.items()}
    lat = {b: measure(fns, x, b, repeats, not args.no_progress) for b in (1, 32)}
    ref = "teacher fp32"
    rows = []
    for name, (_, module) in named.items():
        _, macs = C.count_macs(module, x)
        row: dict = {"encoder": name, "nonzero_macs": macs}
        for b in (1, 32):
            (med, best), (ref_med, ref_best) = lat[b][name], lat[b][ref]
            row.update({f"us_per_image_b{b}": round(med * 1e6, 1), f"speedup_b{b}": round(ref_med / med, 2),
                        f"best_us_per_image_b{b}": round(best * 1e6, 1),
                        f"best_speedup_b{b}": round(ref_best / best, 2)})
        rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    write_csv(RESULTS / "lightweight.csv", rows)
    run = "quick" if args.quick else "full"
    lines = [f"# Lightweight DeepJSCC encoders: CPU latency per 32x32 image ({run} run)", "",
             f"Machine: {platform.machine()}, {torch.get_num_threads()} torch thread, torch "
             f"{torch.__version__}, quantized engine {torch.backends.quantized.engine}; median of {repeats} "
             "interleaved rounds (and, in brackets, from the fastest round: the least disturbed by other "
             "jobs); speedup = teacher fp32 time / encoder time, same run.", "",
             "| encoder | non-zero MACs | us/image, batch 1 | us/image, batch 32 | speedup b1 | "
             "speedup b32 |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['encoder']} | {r['nonzero_macs']:,} | {r['us_per_image_b1']} "
              f"({r['best_us_per_image_b1']}) | {r['us_per_image_b32']} ({r['best_us_per_image_b32']}) | "
              f"{r['speedup_b1']:.2f} ({r['best_speedup_b1']:.2f}) | "
              f"{r['speedup_b32']:.2f} ({r['best_speedup_b32']:.2f}) |" for r in rows]
    text = "\n".join(lines) + "\n"
    (RESULTS / "lightweight.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
