"""`semcom send`: a trained codec, unchanged, over the torch OFAT channel and over the flowgraph.

    semcom send jscc --checkpoint host/semcom/jscc/checkpoints/<name> --snr 20 --n 100

The same model and images go through `semcom.channels.OfatChannel` (the differentiable torch
channel it was trained or evaluated with) and through `FlowgraphChannel` (the loopback flowgraph,
or `--connect TX RX` for a running one: split arrangement, USRP bench); the PSNRs are printed side by
side and written as CSV.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from semcom.results import write_csv


def _send_jscc(args: argparse.Namespace) -> int:
    from semcom.channels import OfatChannel
    from semcom.flowgraph_channel import FlowgraphChannel
    from semcom.jscc.checkpoint import CheckpointError, load_checkpoint
    from semcom.jscc.experiment import load_images
    from semcom.jscc.train import evaluate_psnr
    from semcom.ofat.frame import make_layout

    try:
        model, doc = load_checkpoint(args.checkpoint)
    except CheckpointError as err:
        print(f"error: {err}")
        return 2
    images = load_images(args.images, n=args.n, seed=args.seed, split="test")
    layout = make_layout("wifi64", n_tx=2, n_rx=4)
    # ZF on both paths: an AWGN-trained decoder expects unbiased symbols (MMSE shrinks them).
    torch_channel = OfatChannel(args.snr, layout=layout, seed=args.seed, equalizer="zf")
    rows = []
    psnr_torch = evaluate_psnr(model, images, torch_channel, args.snr)
    rows.append({"channel": "torch OFAT 2x4, ZF (differentiable)", "snr_db": args.snr,
                 "psnr_db": float(np.mean(psnr_torch)), "lost": 0})
    connect = tuple(args.connect) if args.connect else None
    with FlowgraphChannel(args.snr, seed=args.seed, connect=connect, method="zf",
                          progress=not args.no_progress) as fg:
        psnr_fg = evaluate_psnr(model, images, fg, args.snr, batch_size=args.batch)
        rows.append({"channel": "GNU Radio flowgraph" + (" (external)" if connect else " (loopback 2x4)"),
                     "snr_db": args.snr, "psnr_db": float(np.mean(psnr_fg)), "lost": fg.lost})
    for row in rows:
        print(f"{row['channel']:38s} SNR {row['snr_db']:5.1f} dB  PSNR {row['psnr_db']:6.2f} dB  "
              f"lost frames {row['lost']}")
    print(f"wrote {write_csv(Path(args.out) / 'send_jscc.csv', rows)}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("send", help="run a trained codec over the torch channel and the flowgraph")
    sub = p.add_subparsers(dest="send_what", required=True)
    j = sub.add_parser("jscc", help="DeepJSCC images: PSNR over torch OFAT vs the flowgraph")
    j.add_argument("--checkpoint", required=True, help="checkpoint base path (<path>.pt + <path>.json)")
    j.add_argument("--images", default="photos", choices=["photos", "digits", "scenes"])
    j.add_argument("--n", type=int, default=100, help="test images")
    j.add_argument("--snr", type=float, default=20.0)
    j.add_argument("--batch", type=int, default=25, help="images per flowgraph batch")
    j.add_argument("--seed", type=int, default=0)
    j.add_argument("--connect", nargs=2, metavar=("TX_ENDPOINT", "RX_ENDPOINT"))
    j.add_argument("--out", default="results/send")
    j.add_argument("--no-progress", action="store_true")
    j.set_defaults(func=_send_jscc)
