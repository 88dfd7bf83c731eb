"""`semcom usrp probe`: find USRPs for a device-args string and check a requested configuration.

Exit status: 0 ready, 1 a check failed (or the device could not be opened), 2 no USRP found,
3 UHD's Python API missing. Errors go to stderr, the report to stdout; never a traceback for expected
failures (run `semcom -v ...` to log one for unexpected errors).

Standalone: `python -m semcom.usrp.cli probe --args type=b200`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from semcom.errors import finite_float, positive_float
from semcom.usrp.backend import UsrpBackend
from semcom.usrp.model import ProbeRequest
from semcom.usrp.probe import probe
from semcom.usrp.report import EXIT_CHECK_FAILED

log = logging.getLogger(__name__)


def parse_channels(text: str | Sequence[int] | None) -> tuple[int, ...]:
    """'0,1' -> (0, 1); '' / None -> ()."""
    if text is None:
        return ()
    if not isinstance(text, str):
        return tuple(int(c) for c in text)
    return tuple(int(c) for c in text.replace(" ", "").split(",") if c != "")


def parse_si(text: str) -> float:
    """'2.4G' / '20M' / '500k' / '1e6' -> float, in GNU Radio's engineering notation (GRC's eng_float).

    ValueError for anything else (argparse turns it into a one-line usage error)."""
    from gnuradio import eng_notation  # pure Python; the probe needs GNU Radio's UHD anyway

    return float(eng_notation.str_to_num(text.strip()))


def add_probe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--args", default="", help='UHD device args, e.g. "type=b200" or '
                   '"addr0=192.168.10.2,addr1=192.168.10.3" (default: any USRP)')
    p.add_argument("--tx-channels", type=parse_channels, default=(), metavar="LIST",
                   help="TX channel indices to use, e.g. 0,1 (Nt = how many) (default: none checked)")
    p.add_argument("--rx-channels", type=parse_channels, default=(), metavar="LIST",
                   help="RX channel indices to use, e.g. 0,1 (Nr = how many) (default: none checked)")
    p.add_argument("--rate", type=parse_si, help="sample rate in S/s (20M, 1e6, ...) (default: not checked)")
    p.add_argument("--freq", type=parse_si, help="centre frequency in Hz (2.45G, ...) (default: not checked)")
    p.add_argument("--clock-source",
                   help="internal | external | gpsdo | mimo ... (default: the device's own)")
    p.add_argument("--time-source",
                   help="internal | external | gpsdo | mimo | none ... (default: the device's own)")
    p.add_argument("--tx-gain", type=finite_float,
                   help="TX gain in dB to check against the range (default: not checked)")
    p.add_argument("--rx-gain", type=finite_float,
                   help="RX gain in dB to check against the range (default: not checked)")
    p.add_argument("--no-open", action="store_true",
                   help="only list devices; do not open them (no channel/rate/clock checks)")
    p.add_argument("--find-timeout", type=positive_float, default=20.0,
                   help="seconds for discovery (default 20)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--detail", action="store_true", help="also print UHD's pretty-printed device tree")


def request_from_args(ns: argparse.Namespace) -> ProbeRequest:
    return ProbeRequest(tx_channels=tuple(ns.tx_channels), rx_channels=tuple(ns.rx_channels), rate=ns.rate,
                        freq=ns.freq, clock_source=ns.clock_source, time_source=ns.time_source,
                        tx_gain=ns.tx_gain, rx_gain=ns.rx_gain)


def run_probe(ns: argparse.Namespace, backend: UsrpBackend | None = None,
              out: Any = None, err: Any = None) -> int:
    """Body of `semcom usrp probe`; backend is injectable for tests. Returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if backend is None:
            from semcom.usrp.backend import UhdSubprocessBackend

            backend = UhdSubprocessBackend(find_timeout_s=ns.find_timeout)
        report = probe(ns.args, request_from_args(ns), backend=backend, open_devices=not ns.no_open,
                       verbose=ns.detail)
    except Exception as exc:  # a bug, not a device problem: one clear line, traceback only with -v
        log.debug("semcom usrp probe failed", exc_info=True)
        print(f"semcom usrp probe: unexpected error: {type(exc).__name__}: {exc} "
              "(run `semcom -v usrp probe ...` for the traceback)", file=err)
        return EXIT_CHECK_FAILED
    if ns.json:
        print(report.to_json(), file=out)
    else:
        for line in report.lines:
            print(line, file=out)
    for line in report.errors:
        print(line, file=err)
    return report.exit_status


def register(subparsers: Any) -> None:
    """Add `usrp` with sub-command `probe` to the `semcom` command line."""
    usrp = subparsers.add_parser("usrp", help="USRP device tools", description="USRP device tools")
    sub = usrp.add_subparsers(dest="usrp_command", required=True)
    p = sub.add_parser("probe", help="find USRPs and check channels, rate, frequency, clock/time source",
                       description=__doc__.splitlines()[0])
    add_probe_arguments(p)
    p.set_defaults(func=run_probe)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: `python -m semcom.usrp.cli probe ...` (same as `semcom usrp probe ...`)."""
    parser = argparse.ArgumentParser(prog="semcom usrp", description="USRP device tools")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="usrp_command", required=True)
    p = sub.add_parser("probe", help="find USRPs and check a configuration")
    add_probe_arguments(p)
    p.set_defaults(func=run_probe)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.WARNING)
    return int(ns.func(ns))


if __name__ == "__main__":
    sys.exit(main())
