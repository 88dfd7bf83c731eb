"""USRP device check: find devices for a UHD device-args string, describe them, check a request.

Used by `semcom usrp probe` and, through `require_usrp`, by flowgraphs before they build UHD blocks.

Discovery is injectable: everything goes through a `UsrpBackend` (find + open). The default backend,
`UhdSubprocessBackend`, runs UHD in a child process (`_uhd_worker.py`) with a timeout; tests pass a
fake backend that returns device descriptions. The checks (`evaluate`) are pure functions of the device
description and the request, so they are tested without a radio.

Facts used by the checks (sources):
* B2xx (AD9361): the master clock rate is at most 61.44 MHz with one channel and at most 30.72 MHz
  when two channels stream (UHD `b200_impl.cpp`, `enforce_tick_rate_limits`: max tick rate =
  AD9361_MAX_CLOCK_RATE / 2 for 2 channels; AD9361_MAX_CLOCK_RATE = 61.44e6). The sample rate cannot
  exceed the master clock rate, so a 2x2 B210 is limited to 30.72 MS/s per channel.
* B210: both RX channels share one RX LO and both TX channels one TX LO (UHD manual, "USRP B2x0
  Series", RF frontend notes).
* X3xx: the sample rate is the master clock rate (200 or 184.32 MHz in UHD 4) divided by an integer
  DDC/DUC factor; other rates are coerced (UHD manual, "USRP X3x0 Series").
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

NOT_FOUND_PHRASE = "no USRP found"

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_NOT_FOUND = 2
EXIT_UHD_UNAVAILABLE = 3

B2XX_MAX_MCR_1CH = 61.44e6
B2XX_MAX_MCR_2CH = 30.72e6

_WORKER = Path(__file__).with_name("_uhd_worker.py")
_MARK = "SEMCOM_UHD_RESULT "


# ----------------------------------------------------------------------------------------- errors
class UsrpError(RuntimeError):
    """Base class: anything that stops a USRP from being used (clear message, no traceback needed)."""


class UsrpNotFound(UsrpError):
    """No device matches the device args. str() starts with 'no USRP found for "<args>"'."""


class UhdUnavailable(UsrpError):
    """Neither `import uhd` (python3-uhd) nor `from gnuradio import uhd` works."""


class UsrpTimeout(UsrpError):
    """UHD did not answer within the time limit (discovery or open)."""


# ------------------------------------------------------------------------------------ device args
def parse_device_args(args: str) -> dict[str, str]:
    """'type=b200,serial=123' -> {'type': 'b200', 'serial': '123'} (a bare key maps to '')."""
    out: dict[str, str] = {}
    for item in args.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def format_device_args(d: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" if v != "" else k for k, v in d.items())


def split_device_args(args: str) -> list[str]:
    """Split multi-device args the way UHD's `separate_device_addr` does.

    'addr0=A,addr1=B,type=x300' -> ['addr=A,type=x300', 'addr=B']: a key ending in digits belongs to
    that device index, a key without digits to device 0. Args without indexed keys come back as [args].
    Written here because UHD's Python bindings (3.10's `uhd.types.DeviceAddr`) expose no
    `separate_device_addr`.
    """
    parts: dict[int, dict[str, str]] = {}
    indexed = False
    for key, value in parse_device_args(args).items():
        stem = key.rstrip("0123456789")
        if stem and stem != key:
            indexed = True
            parts.setdefault(int(key[len(stem):]), {})[stem] = value
        else:
            parts.setdefault(0, {})[key] = value
    if not indexed:
        return [args]
    return [format_device_args(parts.get(i, {})) for i in range(max(parts) + 1)]


# ------------------------------------------------------------------------------- not-found message
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


# ------------------------------------------------------------------------------------ data classes
@dataclass
class ProbeRequest:
    """What a flowgraph wants from the device. Channels are UHD channel indices (Nt = len(tx_channels))."""

    tx_channels: tuple[int, ...] = ()
    rx_channels: tuple[int, ...] = ()
    rate: float | None = None
    freq: float | None = None
    clock_source: str | None = None
    time_source: str | None = None
    tx_gain: float | None = None
    rx_gain: float | None = None


@dataclass
class ChannelInfo:
    """One RX or TX channel. Ranges are [start, stop, step] (step may be 0)."""

    index: int
    subdev: str = ""
    dboard: str = ""
    dboard_serial: str = ""
    mboard: str = ""
    mboard_serial: str = ""
    antennas: list[str] = field(default_factory=list)
    gain_range: list[float] | None = None
    freq_range: list[float] | None = None
    rate_range: list[float] | None = None
    rate_actual: float | None = None


@dataclass
class MboardInfo:
    name: str = ""
    clock_sources: list[str] = field(default_factory=list)
    time_sources: list[str] = field(default_factory=list)
    master_clock_rate: float | None = None
    master_clock_range: list[float] | None = None
    sensors: list[str] = field(default_factory=list)
    ref_locked: bool | None = None  # after selecting the requested clock source; None = not checked
    pps_seen: bool | None = None  # a PPS edge seen after selecting the requested time source


@dataclass
class DeviceDetails:
    """What opening the device told us."""

    mboards: list[MboardInfo]
    rx: list[ChannelInfo]
    tx: list[ChannelInfo]
    notes: list[str] = field(default_factory=list)
    pp_string: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeviceDetails:
        return cls(
            mboards=[MboardInfo(**m) for m in d.get("mboards", [])],
            rx=[ChannelInfo(**c) for c in d.get("rx", [])],
            tx=[ChannelInfo(**c) for c in d.get("tx", [])],
            notes=list(d.get("notes", [])),
            pp_string=str(d.get("pp_string", "")),
        )


@dataclass
class Check:
    status: str  # "OK" | "WARN" | "FAIL" | "NOTE"
    name: str
    detail: str


# ---------------------------------------------------------------------------------------- backends
class UsrpBackend(Protocol):
    """How the probe reaches UHD. Inject a fake in tests."""

    def find(self, args: str) -> list[dict[str, str]]:
        """Device addresses matching args (single-device args). Raises UhdUnavailable / UsrpTimeout."""
        ...

    def open(self, args: str, request: ProbeRequest) -> DeviceDetails:
        """Open the device(s), apply the request's rate / clock / time source, describe. Raises UsrpError."""
        ...


class UhdSubprocessBackend:
    """Runs UHD in a child process (`_uhd_worker.py`) with a timeout; see the worker for why.

    images_dir and uhd_version are filled by the last find() (None when unknown).
    """

    def __init__(self, find_timeout_s: float = 20.0, open_timeout_s: float = 90.0,
                 python: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        # B2xx discovery loads the firmware on the first call after power-up (seconds), hence 20 s.
        self.find_timeout_s = find_timeout_s
        self.open_timeout_s = open_timeout_s
        self.python = python or sys.executable
        self.extra_env = extra_env or {}
        self.images_dir: str | None = None
        self.uhd_version: str | None = None

    def _run(self, cmd: str, arg: str, timeout_s: float, what: str) -> dict[str, Any]:
        env = dict(os.environ, **self.extra_env)
        try:
            proc = subprocess.run([self.python, str(_WORKER), cmd, arg], capture_output=True, text=True,
                                  timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
            stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            stdout = _text(exc.stdout)
            stderr = _text(exc.stderr)
            if _MARK not in stdout:  # a result printed before a slow teardown still counts
                raise UsrpTimeout(f"UHD {what} did not finish within {timeout_s:g} s; last UHD output: "
                                  f"{_tail(stderr + stdout) or '(none)'}") from None
            rc = 0
        for text in (stderr, stdout):
            version = _uhd_version(text)
            if version:
                self.uhd_version = version
        if _MARK not in stdout:
            raise UsrpError(f"UHD helper process ended (status {rc}) without a result during {what}; "
                            f"last output: {_tail(stderr + stdout) or '(none)'}")
        result: dict[str, Any] = json.loads(stdout.rsplit(_MARK, 1)[1].splitlines()[0])
        if not result.get("ok"):
            kind, message = result.get("kind"), str(result.get("message", ""))
            if kind == "import":
                raise UhdUnavailable(f"UHD's Python API is not available ({message}). Install Debian's "
                                     "python3-uhd (same version as libuhd) or GNU Radio's gr-uhd.")
            raise UsrpError(message)
        return result

    def find(self, args: str) -> list[dict[str, str]]:
        result = self._run("find", args, self.find_timeout_s, "device discovery")
        self.images_dir = result.get("images_dir")
        return [dict(d) for d in result.get("devices", [])]

    def open(self, args: str, request: ProbeRequest) -> DeviceDetails:
        payload = json.dumps({"args": args, "request": asdict(request)})
        return DeviceDetails.from_dict(self._run("open", payload, self.open_timeout_s, "device open"))


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b


def _tail(text: str, n: int = 400) -> str:
    text = " ".join(text.split())
    return text[-n:]


def _uhd_version(text: str) -> str | None:
    # UHD's first log line: "[INFO] [UHD] linux; GNU C++ version 12.2.0; Boost_107400; UHD_4.3.0.0+ds1-5"
    for token in text.split():
        if token.startswith("UHD_") and token[4:5].isdigit():
            return token[4:].rstrip(";")
    return None


# ------------------------------------------------------------------------------------------ checks
def _fmt_hz(x: float | None) -> str:
    if x is None:
        return "?"
    for scale, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz")):
        if abs(x) >= scale:
            return f"{x / scale:g} {unit}"
    return f"{x:g} Hz"


def _fmt_range(r: list[float] | None, fmt: Callable[[float], str]) -> str:
    if not r:
        return "?"
    step = f" step {fmt(r[2])}" if len(r) > 2 and r[2] else ""
    return f"{fmt(r[0])} .. {fmt(r[1])}{step}"


def _in_range(x: float, r: list[float] | None, tol: float = 1e-9) -> bool | None:
    if not r:
        return None
    slack = tol * max(1.0, abs(r[1]))
    return r[0] - slack <= x <= r[1] + slack


def _is_b2xx(found: dict[str, str], details: DeviceDetails | None) -> bool:
    if found.get("type") == "b200" or found.get("product", "").upper().startswith("B2"):
        return True
    return bool(details and details.mboards and details.mboards[0].name.upper().startswith("B2"))


def evaluate(found: dict[str, str], details: DeviceDetails | None, request: ProbeRequest) -> list[Check]:
    """Check the request against one device. found: its discovery address; details: None if not opened."""
    checks: list[Check] = []
    b2xx = _is_b2xx(found, details)
    n_chan = max(len(request.tx_channels), len(request.rx_channels))
    # The B2xx limit is static knowledge, so it is checked even without opening the device.
    if b2xx and request.rate is not None:
        limit = B2XX_MAX_MCR_2CH if n_chan >= 2 else B2XX_MAX_MCR_1CH
        ok = request.rate <= limit + 1.0
        checks.append(Check("OK" if ok else "FAIL", "B2xx rate limit",
                            f"{_fmt_hz(request.rate)} with {max(n_chan, 1)} channel(s): the AD9361 master "
                            f"clock (>= sample rate) is limited to {_fmt_hz(limit)}"
                            + ("" if ok else "; lower the rate or use one channel")))
    if b2xx and n_chan >= 2:
        checks.append(Check("NOTE", "B210 shared LO",
                            "both channels of a direction share one LO: they tune to the same frequency "
                            "(per-channel offsets only through the DSP/CORDIC)"))
    if details is None:
        return checks

    for direction, wanted, chans in (("tx", request.tx_channels, details.tx),
                                     ("rx", request.rx_channels, details.rx)):
        if wanted:
            bad = [c for c in wanted if not 0 <= c < len(chans)]
            dup = len(set(wanted)) != len(wanted)
            status = "FAIL" if bad or dup else "OK"
            detail = (f"requested {','.join(map(str, wanted))}; device has {len(chans)} "
                      f"({direction} 0..{len(chans) - 1})")
            if bad:
                detail += f"; missing: {','.join(map(str, bad))}"
            if dup:
                detail += "; a channel is listed twice"
            checks.append(Check(status, f"{direction.upper()} channels", detail))
        for c in [c for c in (wanted or (0,)) if 0 <= c < len(chans)]:
            ch = chans[c]
            label = f"{direction.upper()}{c}"
            if request.rate is not None:
                inside = _in_range(request.rate, ch.rate_range)
                if inside is False:
                    checks.append(Check("FAIL", f"{label} rate", f"{_fmt_hz(request.rate)} outside "
                                        f"{_fmt_range(ch.rate_range, _fmt_hz)}"))
                elif ch.rate_actual is not None and not math.isclose(ch.rate_actual, request.rate,
                                                                     rel_tol=1e-6):
                    checks.append(Check("WARN", f"{label} rate", f"asked {_fmt_hz(request.rate)}, UHD gives "
                                        f"{_fmt_hz(ch.rate_actual)} (coerced: pick a rate the master clock "
                                        "divides evenly)"))
                else:
                    how = "set and read back" if ch.rate_actual is not None else "within range"
                    checks.append(Check("OK", f"{label} rate", f"{_fmt_hz(request.rate)} ({how})"))
            if request.freq is not None:
                inside = _in_range(request.freq, ch.freq_range)
                checks.append(Check({True: "OK", False: "FAIL", None: "WARN"}[inside], f"{label} freq",
                                    f"{_fmt_hz(request.freq)} in {_fmt_range(ch.freq_range, _fmt_hz)}"
                                    + ("" if inside is not False else " -> not possible here")))
            gain = request.tx_gain if direction == "tx" else request.rx_gain
            if gain is not None:
                inside = _in_range(gain, ch.gain_range)
                checks.append(Check({True: "OK", False: "FAIL", None: "WARN"}[inside], f"{label} gain",
                                    f"{gain:g} dB in {_fmt_range(ch.gain_range, lambda g: f'{g:g} dB')}"))

    # Integer-decimation hint for fixed-master-clock devices when UHD did not report the actual rate.
    if request.rate and not b2xx and details.mboards and details.mboards[0].master_clock_rate:
        mcr = details.mboards[0].master_clock_rate
        actual_known = any(ch.rate_actual is not None for ch in details.rx + details.tx)
        ratio = mcr / request.rate
        if not actual_known and abs(ratio - round(ratio)) > 1e-6:
            checks.append(Check("WARN", "rate vs master clock", f"{_fmt_hz(mcr)} / {_fmt_hz(request.rate)} "
                                f"= {ratio:.4f} is not an integer: UHD will coerce the rate"))

    for kind, wanted_src in (("clock", request.clock_source), ("time", request.time_source)):
        if not wanted_src:
            continue
        for m, mb in enumerate(details.mboards):
            options = mb.clock_sources if kind == "clock" else mb.time_sources
            name = f"{kind} source (mboard {m})"
            if options and wanted_src not in options:
                checks.append(Check("FAIL", name,
                                    f"'{wanted_src}' not available; options: {', '.join(options)}"))
                continue
            seen = mb.ref_locked if kind == "clock" else mb.pps_seen
            if seen is False:
                what = ("reference PLL not locked: no 10 MHz on REF IN?" if kind == "clock"
                        else "no PPS edge seen within 1.5 s: PPS cable/source?")
                checks.append(Check("FAIL", name, f"'{wanted_src}' selected, {what}"))
            elif seen is True:
                what = "ref_locked" if kind == "clock" else "PPS edges arriving"
                checks.append(Check("OK", name, f"'{wanted_src}' selected, {what}"))
            else:
                checks.append(Check("OK" if options else "WARN", name,
                                    f"'{wanted_src}' is listed" if options else "device lists no sources"))
    return checks


# ------------------------------------------------------------------------------------------- probe
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


def _describe(found: dict[str, str]) -> str:
    keys = ("type", "product", "serial", "name", "addr")
    parts = [f"{k}={found[k]}" for k in keys if found.get(k)]
    parts += [f"{k}={v}" for k, v in found.items() if k not in keys and v]
    return " ".join(parts) or "(no address fields)"


def _detail_lines(d: DeviceDetails, verbose: bool) -> list[str]:
    lines = []
    for m, mb in enumerate(d.mboards):
        lines.append(f"  motherboard {m}: {mb.name or '?'}; master clock {_fmt_hz(mb.master_clock_rate)} "
                     f"(range {_fmt_range(mb.master_clock_range, _fmt_hz)})")
        lines.append(f"    clock sources: {', '.join(mb.clock_sources) or '?'}; "
                     f"time sources: {', '.join(mb.time_sources) or '?'}")
    for direction, chans in (("TX", d.tx), ("RX", d.rx)):
        lines.append(f"  {direction} channels: {len(chans)}")
        for ch in chans:
            board = f"{ch.subdev or '?'}" + (f" [{ch.dboard}]" if ch.dboard else "")
            lines.append(f"    {direction}{ch.index}: {board}; antennas {','.join(ch.antennas) or '?'}; "
                         f"gain {_fmt_range(ch.gain_range, lambda g: f'{g:g} dB')}; "
                         f"freq {_fmt_range(ch.freq_range, _fmt_hz)}; "
                         f"rate {_fmt_range(ch.rate_range, _fmt_hz)}")
    for note in d.notes:
        lines.append(f"  (UHD could not report {note})")
    if verbose and d.pp_string:
        lines += ["  uhd_usrp_probe-style summary:"] + ["    " + x for x in d.pp_string.splitlines()]
    return lines


def probe(args: str, request: ProbeRequest | None = None, backend: UsrpBackend | None = None,
          open_devices: bool = True, verbose: bool = False) -> ProbeReport:
    """Find the devices for args, describe them, check the request. Never raises UsrpError."""
    request = request or ProbeRequest()
    backend = backend or UhdSubprocessBackend()
    lines: list[str] = []
    errors: list[str] = []
    parts = split_device_args(args)
    found_per_part: list[list[dict[str, str]]] = []
    try:
        for part in parts:
            found_per_part.append(backend.find(part))
    except UhdUnavailable as exc:
        return ProbeReport([], [str(exc)], EXIT_UHD_UNAVAILABLE)
    except UsrpError as exc:
        return ProbeReport([], [f"{not_found_message(args)}: discovery failed: {exc}"], EXIT_NOT_FOUND)

    version = getattr(backend, "uhd_version", None)
    if version:
        lines.append(f"UHD {version}")
    missing = [p for p, f in zip(parts, found_per_part, strict=True) if not f]
    if missing:
        msg = not_found_message(args)
        if len(parts) > 1:
            msg += f" (nothing answers to {', '.join(repr(p) for p in missing)})"
        errors.append(msg)
        errors += ["  hint: " + h for h in not_found_hints(args, getattr(backend, "images_dir", None))]
        return ProbeReport(lines, errors, EXIT_NOT_FOUND)

    failed = False
    report_devices: list[dict[str, Any]] = []
    if len(parts) > 1:
        # Several motherboards driven as one multi_usrp: list each, open them together.
        for i, found in enumerate(found_per_part):
            lines.append(f"device {i}: {_describe(found[0])}")
        targets = [(f"{len(parts)} motherboards as one multi_usrp", found_per_part[0][0], args)]
    else:
        found_list = found_per_part[0]
        if len(found_list) > 1:
            lines.append(f"{len(found_list)} devices match \"{args}\"; UHD would open the first one. "
                         "Add serial=... (or addr=...) to pick one.")
        targets = []
        user = parse_device_args(args)
        for found in found_list:
            # Open exactly this device: its identity plus the user's other args (master_clock_rate, ...).
            ident = {k: found[k] for k in ("serial", "addr", "resource") if found.get(k)}
            targets.append((_describe(found), found, format_device_args({**user, **ident})))

    for label, found, open_args in targets:
        lines.append(f"device: {label}" if len(parts) == 1 else f"opening {label}")
        details: DeviceDetails | None = None
        checks: list[Check] = []
        if open_devices:
            try:
                details = backend.open(open_args, request)
                lines += _detail_lines(details, verbose)
            except UsrpError as exc:
                checks.append(Check("FAIL", "open", f"could not open with \"{open_args}\": {exc}"))
        checks += evaluate(found, details, request)
        if checks:
            lines.append("  checks:")
            lines += [f"    [{c.status:^4}] {c.name}: {c.detail}" for c in checks]
        dev_failed = any(c.status == "FAIL" for c in checks)
        failed |= dev_failed
        report_devices.append({"found": found, "open_args": open_args,
                               "details": asdict(details) if details else None,
                               "checks": [asdict(c) for c in checks]})
    n_fail = sum(c["status"] == "FAIL" for d in report_devices for c in d["checks"])
    lines.append(f"verdict: NOT READY ({n_fail} failed check(s))" if failed
                 else "verdict: READY (no failed checks)")
    return ProbeReport(lines, errors, EXIT_CHECK_FAILED if failed else EXIT_OK, report_devices)


def require_usrp(args: str, backend: UsrpBackend | None = None) -> None:
    """Raise UsrpNotFound('no USRP found for "<args>" ...') unless every device in args answers.

    For flowgraphs to call before building UHD blocks (whose own error is a C++ KeyError). Runs UHD in
    a child process, so it is safe in a process that already imported gnuradio.uhd. Also raises
    UhdUnavailable when no UHD Python API exists and UsrpNotFound when discovery times out.
    """
    backend = backend or UhdSubprocessBackend()
    parts = split_device_args(args)
    try:
        missing = [p for p in parts if not backend.find(p)]
    except UsrpTimeout as exc:
        raise UsrpNotFound(f"{not_found_message(args)}: {exc}") from None
    if missing:
        hints = not_found_hints(args, getattr(backend, "images_dir", None))
        extra = f" (nothing answers to {', '.join(repr(p) for p in missing)})" if len(parts) > 1 else ""
        raise UsrpNotFound(not_found_message(args) + extra + "\n" + "\n".join("  hint: " + h for h in hints))


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
