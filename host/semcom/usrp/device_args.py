"""UHD device-args strings: 'type=b200,serial=123' and the multi-device 'addr0=A,addr1=B' form.

Parsed here rather than by UHD's own `uhd.types.DeviceAddr`: with GNU Radio 3.10.5 / UHD 4.3, importing
python3-uhd's `uhd` and `gnuradio.uhd` into one process fails either way round ("generic_type ... is
already registered"), and `require_usrp` runs inside flowgraphs that use gr-uhd, so this process must not
import `uhd`. UHD itself parses the args in the probe's child process (`_uhd_worker.py`), where a string
it refuses becomes a discovery error.
"""

from __future__ import annotations


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
    """{'type': 'b200', 'serial': '123'} -> 'type=b200,serial=123' (a key with value '' bare)."""
    return ",".join(f"{k}={v}" if v != "" else k for k, v in d.items())


def split_device_args(args: str) -> list[str]:
    """Split multi-device args the way UHD's `separate_device_addr` does.

    'addr0=A,addr1=B,type=x300' -> ['addr=A,type=x300', 'addr=B']: a key ending in digits belongs to
    that device index, a key without digits to device 0. Args without indexed keys come back as [args].
    Written here because UHD's Python bindings (`uhd.types.DeviceAddr`, gr-uhd's `device_addr_t`)
    expose no `separate_device_addr`.
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

