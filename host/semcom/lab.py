"""`semcom lab`: start a lab bench flowgraph (TX and RX on USRPs) and print its run report.

    semcom lab list
    semcom lab run b210 --tx-args type=b200 --rx-args type=b200 --center-freq 2.45e9 --duration 60

The bench flowgraphs (flowgraphs/lab_*.grc) take tensors on their tensor_source and publish frames
on their tensor_sink like the loopback one, so the host side is `semcom loopback --connect TX RX`.
Devices are probed first (a clear "no USRP found" and exit status 1 without one); at the end the
report shows UHD's U/O/L/S events as counts, and every block's counters.
"""

from __future__ import annotations

import argparse
import inspect
import signal
import threading
import time
from typing import Any

from semcom.errors import nonnegative_float, positive_float

BENCHES = {
    "b210": ("lab_b210_2x2", "one B210, 2x2, shared LO (master clock <= 30.72 MHz with 2 channels)"),
    "x310": ("lab_x310_2x2", "one X310 with two daughterboards, 2x2 (timed tuning for repeatable phases)"),
    "dual": ("lab_dual_2x2", "two devices on external 10 MHz + PPS (OctoClock): TX on one, RX on the other"),
    "n2xx": ("lab_n2xx_1x1", "one single-channel N2xx / B200, 1x1"),
}
STR_PARAMS = ("tx_args", "rx_args", "clock_source", "time_source", "tx_address", "rx_address", "preset",
              "mode")
FLOAT_PARAMS = ("samp_rate", "center_freq", "lo_offset", "clock_rate", "start_delay", "tx_gain", "rx_gain",
                "tx_scale")
FLOWGRAPH_PARAMS = (*STR_PARAMS, *FLOAT_PARAMS, "train_reps")
PARAM_HELP = {
    "tx_args": "UHD device address of the transmitter, e.g. type=b200",
    "rx_args": "UHD device address of the receiver",
    "clock_source": "UHD clock source: internal, external (10 MHz) or gpsdo",
    "time_source": "UHD time source: internal, external (PPS) or gpsdo",
    "tx_address": "ZeroMQ address the TX flowgraph's tensor_source binds",
    "rx_address": "ZeroMQ address the RX flowgraph's tensor_sink binds",
    "preset": "OFAT subcarrier preset (wifi64, ...)",
    "mode": "OFAT value mapping: complex or real",
    "samp_rate": "sample rate in S/s",
    "center_freq": "carrier frequency in Hz",
    "lo_offset": "LO offset in Hz (moves the LO leakage out of the band)",
    "clock_rate": "master clock rate in Hz",
    "start_delay": "seconds from now to the timed start of both streams",
    "tx_gain": "TX gain in dB",
    "rx_gain": "RX gain in dB",
    "tx_scale": "digital scale of the TX samples (keeps the DAC out of clipping)",
    "train_reps": "repetitions of the training block per frame (noise estimate)",
}


def run_report(tb: Any) -> list[str]:
    lines = []
    events = getattr(tb, "semcom_usrp_events_0", None)
    if events is not None:
        lines.append(events.report())
    for name in sorted(dir(tb)):
        block = getattr(tb, name)
        if name.startswith("semcom_") and hasattr(block, "counters") and block is not events:
            lines.append(f"{name}: {block.counters()}")
    return lines


def _run(args: argparse.Namespace) -> int:
    from semcom.flowgraphs import top_block_class
    from semcom.usrp.probe import UsrpError, require_usrp

    grc, _ = BENCHES[args.bench]
    cls = top_block_class(grc)
    defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    params = {k: getattr(args, k) for k in FLOWGRAPH_PARAMS if getattr(args, k) is not None}
    try:
        devices = {params.get(k, defaults[k]) for k in ("tx_args", "rx_args")}
        for device in sorted(devices):
            require_usrp(device)
    except UsrpError as err:
        print(err)
        return 1
    if args.probe_only:
        print("devices answer; not starting the flowgraph (--probe-only)")
        return 0
    try:
        tb = cls(**params)
    except SystemExit as err:  # the flowgraph's own device check
        print(err)
        return 1
    from semcom.flowgraphs import load_flowgraph

    module = load_flowgraph(grc)
    if hasattr(module, "snippets_main_after_init"):
        module.snippets_main_after_init(tb)  # timed tuning and timed start
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tb.start()
    print(f"[lab] {args.bench} running; tensors -> {tb.tx_address}, frames <- {tb.rx_address}; Ctrl-C stops")
    deadline = time.monotonic() + args.duration if args.duration else None
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        stop.wait(args.report_every)
        for line in run_report(tb):
            print(f"[lab] {line}")
    tb.stop()
    tb.wait()
    print("[lab] run report:")
    for line in run_report(tb):
        print(f"  {line}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for name, (grc, text) in BENCHES.items():
        print(f"{name:6s} flowgraphs/{grc}.grc  {text}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lab", help="run a USRP lab bench flowgraph with a run report")
    sub = p.add_subparsers(dest="lab_command", required=True)
    sub.add_parser("list", help="the benches").set_defaults(func=_list)
    r = sub.add_parser("run", help="probe the devices, then run a bench until Ctrl-C or --duration")
    r.add_argument("bench", choices=sorted(BENCHES))
    for name in FLOWGRAPH_PARAMS:
        kind = str if name in STR_PARAMS else float if name in FLOAT_PARAMS else int
        r.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None,
                       help=f"{PARAM_HELP[name]} (default: the bench flowgraph's own value)")
    r.add_argument("--duration", type=nonnegative_float, default=0.0,
                   help="seconds, 0: until Ctrl-C (default: %(default)s)")
    r.add_argument("--report-every", type=positive_float, default=10.0,
                   help="seconds between interim reports (default: %(default)s)")
    r.add_argument("--probe-only", action="store_true", help="check the devices and stop (default: off)")
    r.set_defaults(func=_run)
