"""The checks of a request against one device: pure functions of its discovery address, what opening it
told (`DeviceDetails`) and the request, so they are tested without a radio.

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

import math
from collections.abc import Callable
from dataclasses import dataclass

from semcom.usrp.model import DeviceDetails, ProbeRequest

B2XX_MAX_MCR_1CH = 61.44e6
B2XX_MAX_MCR_2CH = 30.72e6


@dataclass
class Check:
    status: str  # "OK" | "WARN" | "FAIL" | "NOTE"
    name: str
    detail: str


def fmt_hz(x: float | None) -> str:
    """2.45e9 -> '2.45 GHz' ('?' for None)."""
    if x is None:
        return "?"
    for scale, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz")):
        if abs(x) >= scale:
            return f"{x / scale:g} {unit}"
    return f"{x:g} Hz"


def fmt_range(r: list[float] | None, fmt: Callable[[float], str]) -> str:
    """[start, stop, step] -> 'start .. stop step s' with each number through fmt ('?' when unknown)."""
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
                            f"{fmt_hz(request.rate)} with {max(n_chan, 1)} channel(s): the AD9361 master "
                            f"clock (>= sample rate) is limited to {fmt_hz(limit)}"
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
                    checks.append(Check("FAIL", f"{label} rate", f"{fmt_hz(request.rate)} outside "
                                        f"{fmt_range(ch.rate_range, fmt_hz)}"))
                elif ch.rate_actual is not None and not math.isclose(ch.rate_actual, request.rate,
                                                                     rel_tol=1e-6):
                    checks.append(Check("WARN", f"{label} rate", f"asked {fmt_hz(request.rate)}, UHD gives "
                                        f"{fmt_hz(ch.rate_actual)} (coerced: pick a rate the master clock "
                                        "divides evenly)"))
                else:
                    how = "set and read back" if ch.rate_actual is not None else "within range"
                    checks.append(Check("OK", f"{label} rate", f"{fmt_hz(request.rate)} ({how})"))
            if request.freq is not None:
                inside = _in_range(request.freq, ch.freq_range)
                checks.append(Check({True: "OK", False: "FAIL", None: "WARN"}[inside], f"{label} freq",
                                    f"{fmt_hz(request.freq)} in {fmt_range(ch.freq_range, fmt_hz)}"
                                    + ("" if inside is not False else " -> not possible here")))
            gain = request.tx_gain if direction == "tx" else request.rx_gain
            if gain is not None:
                inside = _in_range(gain, ch.gain_range)
                checks.append(Check({True: "OK", False: "FAIL", None: "WARN"}[inside], f"{label} gain",
                                    f"{gain:g} dB in {fmt_range(ch.gain_range, lambda g: f'{g:g} dB')}"))

    # Integer-decimation hint for fixed-master-clock devices when UHD did not report the actual rate.
    if request.rate and not b2xx and details.mboards and details.mboards[0].master_clock_rate:
        mcr = details.mboards[0].master_clock_rate
        actual_known = any(ch.rate_actual is not None for ch in details.rx + details.tx)
        ratio = mcr / request.rate
        if not actual_known and abs(ratio - round(ratio)) > 1e-6:
            checks.append(Check("WARN", "rate vs master clock", f"{fmt_hz(mcr)} / {fmt_hz(request.rate)} "
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
