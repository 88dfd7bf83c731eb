"""``semcom network``: the multi-cell semantic network and its hierarchical DRL.

    semcom network curves            # measure the semantic table (shipped token link, k tokens vs SNR)
    semcom network train [--quick]   # Fig. 7: every scheme learns online over the slots, several seeds
    semcom network eval              # trained policies (frozen) vs the baselines on fresh seeds
    semcom network live              # trained policies driving OFAT links in one loopback flowgraph
    semcom network linktable [--quick]  # the live flowgraph's OFAT link over a controlled SINR sweep:
                                        # the env's link model (delivery, accuracy ratio per SINR bin)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from semcom.errors import UsageError, finite_float, nonnegative_int, output_dir, positive_int

DEFAULT_OUT = Path("experiments/network/output")


def cell_count(text: str) -> int:
    """argparse type: cells of an interference network, an integer >= 2."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value} cell: an interference network needs >= 2 cells")
    return value


def edge_fraction(text: str) -> float:
    """argparse type: the inner radius of the terminals' annulus as a fraction of R, in [0, 1)."""
    value = finite_float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1)")
    return value


def _threads(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _curves(args: argparse.Namespace) -> int:
    from .curves import SemanticTable, plot_table, run_curves

    if args.replot:
        if not Path(args.table).is_file():
            raise UsageError(f"--replot: no semantic table {args.table}")
        path = Path(args.out) / "semantic_curves.png"
        plot_table(path, SemanticTable.from_csv(args.table))
        print(f"wrote {path}")
        return 0
    _threads(args)
    table = run_curves(args.checkpoints, args.table, args.out, args.n_test, args.seed,
                       " ".join(["semcom", *sys.argv[1:]]), progress=not args.no_progress)
    print(f"{table.n_levels} levels x {len(table.snr_db)} SNRs -> {args.table}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .experiment import Fig7Config, fig7, plot_scaling, replot_fig7

    if args.replot:
        out = Path(args.out)
        scaling = out / "scaling.json"
        if not (out / "fig7.csv").is_file() and not scaling.is_file():
            raise UsageError(f"--replot: {out} has neither fig7.csv nor scaling.json")
        if (out / "fig7.csv").is_file():
            print(f"wrote {replot_fig7(out)}")
        if scaling.is_file():
            doc = json.loads(scaling.read_text())
            plot_scaling(scaling.with_suffix(".png"), doc["scaling"], tuple(doc["config"]["scaling_schemes"]))
            print(f"wrote {scaling.with_suffix('.png')}")
        return 0
    _threads(args)
    fc = Fig7Config.quick() if args.quick else Fig7Config()
    kw = {k: v for k, v in (("seeds", tuple(args.seeds) if args.seeds else None), ("n_slots", args.slots),
                            ("n_cells", args.cells), ("period", args.period), ("n_antennas", args.antennas),
                            ("ue_min_frac", args.ue_min_frac),
                            ("schemes", tuple(args.schemes) if args.schemes else None)) if v is not None}
    if args.no_scaling:
        kw.update(scaling_cells=(), scaling_periods=())
    for key in ("scaling_cells", "scaling_periods", "scaling_seeds", "scaling_schemes"):
        if getattr(args, key) is not None:
            kw[key] = tuple(getattr(args, key))
    if args.scaling_slots is not None:
        kw["scaling_slots"] = args.scaling_slots
    if args.only_scaling:
        kw["schemes"] = ()
    fc = replace(fc, **kw)
    summary = fig7(fc, args.out, progress=not args.no_progress, command=" ".join(["semcom", *sys.argv[1:]]))
    for name, row in summary.get("final_qoe", {}).items():
        print(f"{name:14s} final QoE {row['final_qoe_mean']:.4f} ± {row['final_qoe_std']:.4f}")
    print(json.dumps(summary.get("acceptance", summary.get("scaling")), indent=1, default=float))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_policies

    _threads(args)
    res = evaluate_policies(args.policies, args.out, tuple(args.seeds), args.slots, args.cells,
                            progress=not args.no_progress, link_table=args.link_table,
                            frame_values=args.frame_values)
    for name, (m, s) in res["final_qoe"].items():
        print(f"{name:14s} QoE {m:.4f} ± {s:.4f}")
    return 0


def _live(args: argparse.Namespace) -> int:
    from . import live

    _threads(args)
    if args.compare_only:  # the simulated side of a finished run again (e.g. with another link table)
        summary = live.compare(args.out, args.link_table)
    else:
        res = live.run_live(args.policies, args.out, n_frames=args.frames, seed=args.seed, scheme=args.scheme,
                            progress=not args.no_progress, link_sequences=not args.shared_sequence,
                            link_table=args.link_table)
        summary = res["summary"]
    print(json.dumps(summary, indent=1, default=float))
    return 0 if summary.get("within_margin", False) else 1


def _linktable(args: argparse.Namespace) -> int:
    from .linktable import BIN_EDGES, QUICK_EDGES, aggregate, run_link_table

    _threads(args)
    seeds = tuple(args.seeds) if args.seeds else ((0,) if args.quick else (0, 1, 2))
    frames = args.frames or (1 if args.quick else 12)
    ref = args.reference_frames or (1 if args.quick else 4)
    edges, command = QUICK_EDGES if args.quick else BIN_EDGES, " ".join(["semcom", *sys.argv[1:]])
    mixes = tuple(args.mixes)
    if args.aggregate:
        res = aggregate(args.out, args.table, seeds, frames, ref, edges, command, mixes=mixes,
                        per_link=args.per_link)
    else:
        res = run_link_table(args.out, args.table, seeds, frames, ref, edges, answers=not args.no_answers,
                             command=command, progress=not args.no_progress, mixes=mixes)
    print(f"{res['frames_sent']} frames sent, {res['frames_delivered']} delivered, {res['frames_lost']} lost "
          f"-> {args.table}")
    for r in res["table_rows"]:
        print(f"{r['sinr_lo_db']:6.1f} .. {r['sinr_hi_db']:5.1f} dB: delivered {r['delivered']:.2f}, "
              f"accuracy ratio {r['accuracy_ratio']:.3f}, SNR estimate {r['snr_estimate_bias_db']:+.2f} dB")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from .agents import SCHEMES
    from .curves import DEFAULT_TABLE
    from .experiment import Fig7Config

    p = subparsers.add_parser("network", help="multi-cell semantic network, hierarchical DRL")
    sub = p.add_subparsers(dest="network_what", required=True)

    def common(q: argparse.ArgumentParser, out: Path = DEFAULT_OUT) -> None:
        q.add_argument("--out", type=output_dir, default=str(out),
                       help="output folder (default: %(default)s)")
        q.add_argument("--threads", type=positive_int, default=1,
                       help="torch CPU threads (default: %(default)s)")
        q.add_argument("--no-progress", action="store_true", help="no progress bars (default: bars on)")

    c = sub.add_parser("curves", help="measure accuracy vs SNR per compression level (the env's table)")
    from semcom.agents.commands import SHIPPED_CHECKPOINTS

    c.add_argument("--checkpoints", default=str(SHIPPED_CHECKPOINTS),
                   help="token-pipeline checkpoints measured (default: the shipped ones)")
    c.add_argument("--table", default=str(DEFAULT_TABLE),
                   help="the semantic table written, which the env reads (default: %(default)s)")
    c.add_argument("--n-test", type=positive_int, default=2400,
                   help="test questions per point (default: %(default)s)")
    c.add_argument("--seed", type=nonnegative_int, default=1,
                   help="channel-noise seed (default: %(default)s)")
    c.add_argument("--replot", action="store_true",
                   help="measure nothing: redraw --out's semantic_curves.png from --table (default: off)")
    common(c)
    c.set_defaults(func=_curves)

    t = sub.add_parser("train", help="Fig. 7: QoE vs slots of every scheme, gains, scaling")
    d = Fig7Config()

    def dflt(value: object) -> str:
        text = " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        return f"(default: {text}; --quick: its own)"

    t.add_argument("--quick", action="store_true",
                   help="3 cells, 600 slots, 2 seeds, no scaling: the tests' size (default: off)")
    t.add_argument("--seeds", type=nonnegative_int, nargs="+",
                   help=f"environment + training seeds {dflt(d.seeds)}")
    t.add_argument("--slots", type=positive_int, help=f"slots per run {dflt(d.n_slots)}")
    t.add_argument("--cells", type=cell_count, help=f"cells (hexagonal layout) {dflt(d.n_cells)}")
    t.add_argument("--period", type=positive_int, help=f"large timescale T in slots {dflt(d.period)}")
    t.add_argument("--antennas", type=positive_int,
                   help=f"BS antennas = DFT beams, 1: no beamforming {dflt(d.n_antennas)}")
    t.add_argument("--ue-min-frac", type=edge_fraction,
                   help=f"terminals uniform in [frac R, R], 0.5: cell-edge users {dflt(d.ue_min_frac)}")
    t.add_argument("--schemes", nargs="+", choices=list(SCHEMES), metavar="SCHEME",
                   help=f"schemes to run, of {', '.join(SCHEMES)} (default: all)")
    t.add_argument("--no-scaling", action="store_true", help="skip the scaling study (default: run it)")
    t.add_argument("--replot", action="store_true",
                   help="train nothing: redraw --out's fig7.png from its fig7.csv + summary.json and its "
                        "scaling.png from its scaling.json, where present (default: off)")
    t.add_argument("--only-scaling", action="store_true",
                   help="the scaling study alone (scaling.csv/json) (default: off)")
    t.add_argument("--scaling-cells", type=cell_count, nargs="+", help=f"cells axis {dflt(d.scaling_cells)}")
    t.add_argument("--scaling-periods", type=positive_int, nargs="+",
                   help=f"T axis {dflt(d.scaling_periods)}")
    t.add_argument("--scaling-seeds", type=nonnegative_int, nargs="+",
                   help=f"seeds of each point {dflt(d.scaling_seeds)}")
    t.add_argument("--scaling-slots", type=positive_int, help=f"slots of each point {dflt(d.scaling_slots)}")
    t.add_argument("--scaling-schemes", nargs="+", choices=list(SCHEMES), metavar="SCHEME",
                   help=f"schemes of each point {dflt(d.scaling_schemes)}")
    common(t)
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="trained policies, frozen, vs the baselines on fresh seeds")
    e.add_argument("--policies", default=str(DEFAULT_OUT / "policies"),
                   help="folder of the trained policies (default: %(default)s)")
    e.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[100, 101, 102, 103, 104],
                   help="unseen scenario seeds (default: %(default)s)")
    e.add_argument("--slots", type=positive_int, default=1000, help="slots per seed (default: %(default)s)")
    e.add_argument("--cells", type=cell_count, default=7,
                   help="cells, as the policies were trained (default: %(default)s)")
    e.add_argument("--link-table", default="",
                   help="the env's link model, e.g. the shipped one of `semcom network linktable` "
                        "(default: none, the AWGN table alone)")
    e.add_argument("--frame-values", type=nonnegative_int, default=0,
                   help="score every slot per frame of this many values, 2560 as live (default: 0, the "
                        "QoE of the expected accuracy)")
    common(e, DEFAULT_OUT / "eval")
    e.set_defaults(func=_eval)

    v = sub.add_parser("live", help="the trained policies on OFAT links sharing one loopback flowgraph")
    v.add_argument("--policies", default=str(DEFAULT_OUT / "live_train" / "policies"),
                   help="policies trained on the live scenario's cell count, 3 (default: %(default)s)")
    v.add_argument("--scheme", default="hierarchical", help="whose policies act (default: %(default)s)")
    v.add_argument("--frames", type=positive_int, default=200,
                   help="slots, one frame per link each (default: %(default)s)")
    v.add_argument("--seed", type=nonnegative_int, default=100, help="scenario seed (default: %(default)s)")
    v.add_argument("--shared-sequence", action="store_true",
                   help="every link on sequence_id 0, the ablation of link-specific sequences "
                        "(default: off, link k on sequence_id k)")
    from .linktable import DEFAULT_LINK_TABLE, DEFAULT_MIXES, MIXES

    v.add_argument("--link-table", default=str(DEFAULT_LINK_TABLE),
                   help="the simulation's link model, from `semcom network linktable` (default: %(default)s)")
    v.add_argument("--compare-only", action="store_true",
                   help="run nothing: compare the finished run in --out with the simulation again "
                        "(writes gap.json, updates live.json and live.png) (default: off)")
    common(v, DEFAULT_OUT / "live")
    v.set_defaults(func=_live)

    lt = sub.add_parser("linktable", help="the live flowgraph's OFAT link over a controlled SINR sweep -> "
                                          "the env's link table (delivery, accuracy ratio per SINR bin)")
    lt.add_argument("--quick", action="store_true",
                    help="one seed, 3 SINR bins, one frame per bin and mix: the tests' size (default: off)")
    lt.add_argument("--seeds", type=nonnegative_int, nargs="+",
                    help="flowgraph seeds (default: 0 1 2; --quick: 0)")
    lt.add_argument("--frames", type=positive_int,
                    help="frames per SINR bin in the interference mix, per seed (default: 12; --quick: 1)")
    lt.add_argument("--reference-frames", type=positive_int,
                    help="frames per SINR bin in each other mix, per seed (default: 4; --quick: 1)")
    lt.add_argument("--no-answers", action="store_true",
                    help="PHY only: no questions answered, accuracy columns empty (default: answers on)")
    lt.add_argument("--mixes", nargs="+", default=list(DEFAULT_MIXES), choices=list(MIXES),
                    help="interference / noise mixes swept; the first makes the table (default: %(default)s)")
    lt.add_argument("--aggregate", action="store_true",
                    help="measure nothing: the table again from the seeds' frames_seed_N.csv already in "
                         "--out (default: off)")
    lt.add_argument("--per-link", action="store_true",
                    help="with --aggregate: also one table per link, <table>_per_link.csv (default: off)")
    lt.add_argument("--table", default=str(DEFAULT_LINK_TABLE),
                    help="the link table written, which the live comparison reads (default: %(default)s)")
    common(lt, DEFAULT_OUT / "link_table")
    lt.set_defaults(func=_linktable)
