"""What the probe asks of a device (`ProbeRequest`) and what opening it told (`DeviceDetails`).

Plain data shared by the backend that fills them, the checks that read them and the report that prints
them; `DeviceDetails.from_dict` reads the JSON the UHD child process writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
