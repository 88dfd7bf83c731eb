"""Child process that talks to UHD for `semcom.usrp.probe` (standard library + UHD only).

Run by path, never imported by the parent:

    python _uhd_worker.py find '<device args>'
    python _uhd_worker.py open '<json: {"args": ..., "request": {...}}>'

It prints exactly one line `SEMCOM_UHD_RESULT <json>` on stdout and exits 0, also on errors (the JSON
then has "ok": false, "kind", "message").

Why a separate process:
* the parent can put a hard timeout on UHD (a half-booted network device or a USB device stuck in
  firmware load must not hang a flowgraph start or a test);
* Debian's `uhd` (python3-uhd) and `gnuradio.uhd` cannot be imported into the same process with GNU
  Radio 3.10.5 / UHD 4.3 ("generic_type: type ... is already registered", fixed upstream by
  gnuradio/gnuradio PR #6687), so a flowgraph that uses gr-uhd must not import `uhd` itself;
* a crash inside the driver ends the child, not the flowgraph.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

MARK = "SEMCOM_UHD_RESULT "


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def _import_uhd() -> tuple[str, Any]:
    """Return (api name, module): python3-uhd's `uhd` first (full MultiUSRP API), else gr-uhd."""
    errors = []
    try:
        import uhd  # type: ignore[import-not-found]

        return "uhd", uhd
    except Exception as exc:  # ImportError, or pybind11 registration errors
        errors.append(f"import uhd: {exc}")
    try:
        from gnuradio import uhd as gr_uhd  # type: ignore[import-not-found]

        if not hasattr(gr_uhd, "find"):
            # GR 3.10 before 3.10.4 has only the broken find_devices (gnuradio/gnuradio issue #6313).
            raise ImportError("gnuradio.uhd has no find() (GNU Radio < 3.10.4)")
        return "gnuradio.uhd", gr_uhd
    except Exception as exc:
        errors.append(f"from gnuradio import uhd: {exc}")
    raise ImportError("; ".join(errors))


def _addr_to_dict(addr: Any) -> dict[str, str]:
    if hasattr(addr, "to_dict"):
        return {str(k): str(v) for k, v in addr.to_dict().items()}
    return {str(k): str(addr.get(k)) for k in addr.keys()}


def _images_dir(mod: Any) -> str | None:
    try:
        return str(mod.get_images_dir("")) if hasattr(mod, "get_images_dir") else None
    except Exception:
        return None


def cmd_find(args: str) -> dict[str, Any]:
    api, mod = _import_uhd()
    if api == "uhd":
        addrs = mod.find(args)
    else:
        addrs = mod.find(mod.device_addr(args))
    return {"ok": True, "api": api, "devices": [_addr_to_dict(a) for a in addrs],
            "images_dir": _images_dir(mod)}


def _range(r: Any) -> list[float] | None:
    """meta_range_t -> [start, stop, step]."""
    try:
        return [float(r.start()), float(r.stop()), float(r.step())]
    except Exception:
        return None


class _Safe:
    """Calls getters, turning each failure into a note instead of losing the whole report."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def __call__(self, what: str, fn: Any, *a: Any, default: Any = None) -> Any:
        try:
            return fn(*a)
        except Exception as exc:
            self.notes.append(f"{what}: {exc}")
            return default

    def ok(self, what: str, fn: Any, *a: Any) -> bool:
        """Call a setter; True when it did not raise."""
        failed = object()
        return self(what, fn, *a, default=failed) is not failed


def _channel(usrp: Any, safe: _Safe, direction: str, chan: int) -> dict[str, Any]:
    get = lambda name: getattr(usrp, f"get_{direction}_{name}")  # noqa: E731
    info = safe(f"{direction}{chan} info", getattr(usrp, f"get_usrp_{direction}_info"), chan, default={})
    info = info or {}
    return {
        "index": chan,
        "subdev": safe(f"{direction}{chan} subdev", get("subdev_name"), chan, default=""),
        "dboard": str(info.get(f"{direction}_id", "")),
        "dboard_serial": str(info.get(f"{direction}_serial", "")),
        "mboard": str(info.get("mboard_id", "")),
        "mboard_serial": str(info.get("mboard_serial", "")),
        "antennas": list(safe(f"{direction}{chan} antennas", get("antennas"), chan, default=[]) or []),
        "gain_range": _range(safe(f"{direction}{chan} gain range", get("gain_range"), chan)),
        "freq_range": _range(safe(f"{direction}{chan} freq range", get("freq_range"), chan)),
        "rate_range": _range(safe(f"{direction}{chan} rates", get("rates"), chan)),
        "rate_actual": None,
    }


def _wait_sensor_true(usrp: Any, name: str, mboard: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if usrp.get_mboard_sensor(name, mboard).to_bool():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _pps_seen(usrp: Any, mboard: int, timeout_s: float) -> bool:
    """True when the time of the last PPS edge changes within timeout_s (a PPS arrives once a second)."""
    t0 = usrp.get_time_last_pps(mboard).get_real_secs()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if usrp.get_time_last_pps(mboard).get_real_secs() != t0:
            return True
    return False


def cmd_open(payload: dict[str, Any]) -> None:
    """Open the device, apply the request's rate / clock / time source, emit the details."""
    api, mod = _import_uhd()
    if api != "uhd":
        _emit({"ok": False, "kind": "no_details",
               "message": "device details need python3-uhd (`import uhd`); only gr-uhd is available"})
        return
    args: str = payload["args"]
    req: dict[str, Any] = payload.get("request", {})
    usrp = mod.usrp.MultiUSRP(args)
    safe = _Safe()
    mboards = []
    for m in range(usrp.get_num_mboards()):
        sensors = list(safe(f"mb{m} sensors", usrp.get_mboard_sensor_names, m, default=[]) or [])
        mboards.append({
            "name": safe(f"mb{m} name", usrp.get_mboard_name, m, default=""),
            "clock_sources": list(safe(f"mb{m} clock sources", usrp.get_clock_sources, m, default=[]) or []),
            "time_sources": list(safe(f"mb{m} time sources", usrp.get_time_sources, m, default=[]) or []),
            "master_clock_rate": safe(f"mb{m} master clock", usrp.get_master_clock_rate, m),
            "master_clock_range": _range(safe(f"mb{m} mcr range", usrp.get_master_clock_rate_range, m)),
            "sensors": sensors,
            "ref_locked": None,
            "pps_seen": None,
        })
    rx = [_channel(usrp, safe, "rx", c) for c in range(usrp.get_rx_num_channels())]
    tx = [_channel(usrp, safe, "tx", c) for c in range(usrp.get_tx_num_channels())]

    # Apply the requested rate so the report shows what UHD really gives (it coerces silently).
    rate = req.get("rate")
    if rate:
        for direction, chans in (("rx", rx), ("tx", tx)):
            for c in req.get(f"{direction}_channels") or [0]:
                if 0 <= c < len(chans):
                    setter = getattr(usrp, f"set_{direction}_rate")
                    getter = getattr(usrp, f"get_{direction}_rate")
                    if safe.ok(f"set_{direction}_rate({rate}, {c})", setter, float(rate), c):
                        chans[c]["rate_actual"] = safe(f"get_{direction}_rate({c})", getter, c)
    # Clock/time source: select it, then read the lock sensor / watch for a PPS edge.
    for m, mb in enumerate(mboards):
        src = req.get("clock_source")
        if src and src in mb["clock_sources"]:
            safe(f"set_clock_source({src}, {m})", usrp.set_clock_source, src, m)
            if "ref_locked" in mb["sensors"]:
                mb["ref_locked"] = safe(f"mb{m} ref_locked", _wait_sensor_true, usrp, "ref_locked", m, 2.0)
        tsrc = req.get("time_source")
        if tsrc and tsrc in mb["time_sources"]:
            safe(f"set_time_source({tsrc}, {m})", usrp.set_time_source, tsrc, m)
            if tsrc not in ("internal", "none"):
                mb["pps_seen"] = safe(f"mb{m} pps", _pps_seen, usrp, m, 1.5)
    pp = safe("pp string", usrp.get_pp_string, default="")
    result = {"ok": True, "api": api, "mboards": mboards, "rx": rx, "tx": tx, "notes": safe.notes,
              "pp_string": pp}
    _emit(result)
    del usrp  # release the device (after the result is out, in case teardown is slow)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("find", "open"):
        _emit({"ok": False, "kind": "usage", "message": "usage: _uhd_worker.py find|open <arg>"})
        return 0
    try:
        if argv[1] == "find":
            _emit(cmd_find(argv[2]))
        else:
            cmd_open(json.loads(argv[2]))
    except ImportError as exc:
        _emit({"ok": False, "kind": "import", "message": str(exc)})
    except Exception as exc:  # report driver errors as data; the parent formats them
        _emit({"ok": False, "kind": "error", "message": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
