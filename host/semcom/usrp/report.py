"""What `semcom usrp probe` prints: the exit statuses, the not-found message and its hints, the device
description lines and the report (`ProbeReport`: lines for stdout, errors for stderr, JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from semcom.usrp.checks import fmt_hz, fmt_range
from semcom.usrp.device_args import parse_device_args
from semcom.usrp.model import DeviceDetails

NOT_FOUND_PHRASE = "no USRP found"

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_NOT_FOUND = 2
EXIT_UHD_UNAVAILABLE = 3


def not_found_message(args: str) -> str:
    """The one-line message every caller prints: 'no USRP found for "<args>"'."""
    shown = f'"{args}"' if args.strip() else '"" (empty args: any USRP)'
    return f"{NOT_FOUND_PHRASE} for {shown}"


def not_found_hints(args: str, images_dir: str | None = None) -> list[str]:
    """Things to check, most likely first. images_dir: UHD's images directory ('' = none found)."""
    keys = parse_device_args(args)
    network = any(k.rstrip("0123456789") in ("addr", "mgmt_addr", "second_addr") for k in keys)
    hints = ["Is it plugged in and powered? (B2xx: USB 3 port and cable, LED lit; "
             "X3xx/N2xx: power switch and Ethernet link LEDs.)"]
    if network or not keys:
        hints.append("Network USRP: the host NIC must be on the device's subnet (factory default "
                     "192.168.10.2 for N2xx and the X310 1 GbE port; see firmware_notes/host_tuning.md), "
                     "`ping <addr>` must answer, and a firewall must let UHD's UDP traffic through.")
    if not network:
        hints.append("USB USRP: `lsusb` should list vendor 2500 (Ettus Research) or 3923 (NI); if it "
                     "does but UHD does not see it, install UHD's udev rules (uhd-usrp.rules, shipped by "
                     "the uhd-host package) and re-plug, or try once with sudo to rule out permissions.")
        hints.append("A B2xx that another program (flowgraph, uhd_fft) has open is not listed by "
                     "discovery: close the other program.")
    if images_dir is not None and not images_dir:
        hints.append("UHD found no images directory: B2xx discovery needs the firmware image, so run "
                     "`uhd_images_downloader` (package uhd-host) or set UHD_IMAGES_DIR.")
    hints.append(f'UHD\'s own view: `uhd_find_devices --args "{args}"` and '
                 f'`uhd_usrp_probe --args "{args}"` (package uhd-host).')
    return hints


@dataclass
class ProbeReport:
    """Text lines to print and the exit status (EXIT_*)."""

    lines: list[str]
    errors: list[str]
    exit_status: int
    devices: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"exit_status": self.exit_status, "errors": self.errors, "devices": self.devices},
                          indent=2)


def describe(found: dict[str, str]) -> str:
    keys = ("type", "product", "serial", "name", "addr")
    parts = [f"{k}={found[k]}" for k in keys if found.get(k)]
    parts += [f"{k}={v}" for k, v in found.items() if k not in keys and v]
    return " ".join(parts) or "(no address fields)"


def detail_lines(d: DeviceDetails, verbose: bool) -> list[str]:
    lines = []
    for m, mb in enumerate(d.mboards):
        lines.append(f"  motherboard {m}: {mb.name or '?'}; master clock {fmt_hz(mb.master_clock_rate)} "
                     f"(range {fmt_range(mb.master_clock_range, fmt_hz)})")
        lines.append(f"    clock sources: {', '.join(mb.clock_sources) or '?'}; "
                     f"time sources: {', '.join(mb.time_sources) or '?'}")
    for direction, chans in (("TX", d.tx), ("RX", d.rx)):
        lines.append(f"  {direction} channels: {len(chans)}")
        for ch in chans:
            board = f"{ch.subdev or '?'}" + (f" [{ch.dboard}]" if ch.dboard else "")
            lines.append(f"    {direction}{ch.index}: {board}; antennas {','.join(ch.antennas) or '?'}; "
                         f"gain {fmt_range(ch.gain_range, lambda g: f'{g:g} dB')}; "
                         f"freq {fmt_range(ch.freq_range, fmt_hz)}; "
                         f"rate {fmt_range(ch.rate_range, fmt_hz)}")
    for note in d.notes:
        lines.append(f"  (UHD could not report {note})")
    if verbose and d.pp_string:
        lines += ["  uhd_usrp_probe-style summary:"] + ["    " + x for x in d.pp_string.splitlines()]
    return lines
