"""USRP device check: find devices for a UHD device-args string, describe them, check a request.

Used by `semcom usrp probe` and, through `require_usrp`, by flowgraphs before they build UHD blocks.
The jobs live in their own modules: device args (`device_args`), reaching UHD (`backend`: a child process
with a timeout, or a fake in tests), the checks (`checks`), what is printed (`report`); this module runs
them in order.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from semcom.usrp.backend import UhdSubprocessBackend, UsrpBackend
from semcom.usrp.checks import Check, evaluate
from semcom.usrp.device_args import format_device_args, parse_device_args, split_device_args
from semcom.usrp.errors import UhdUnavailable, UsrpError, UsrpNotFound, UsrpTimeout
from semcom.usrp.model import DeviceDetails, ProbeRequest
from semcom.usrp.report import (
    EXIT_CHECK_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UHD_UNAVAILABLE,
    ProbeReport,
    describe,
    detail_lines,
    not_found_hints,
    not_found_message,
)


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
            lines.append(f"device {i}: {describe(found[0])}")
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
            targets.append((describe(found), found, format_device_args({**user, **ident})))

    for label, found, open_args in targets:
        lines.append(f"device: {label}" if len(parts) == 1 else f"opening {label}")
        details: DeviceDetails | None = None
        checks: list[Check] = []
        if open_devices:
            try:
                details = backend.open(open_args, request)
                lines += detail_lines(details, verbose)
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
