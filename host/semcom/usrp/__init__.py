"""USRP side of the testbed: device discovery and checks (`semcom usrp probe`, `require_usrp`).

Importing this package never imports UHD: UHD runs in a child process (see probe.py).
"""

from semcom.usrp.probe import (
    EXIT_CHECK_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UHD_UNAVAILABLE,
    NOT_FOUND_PHRASE,
    ChannelInfo,
    Check,
    DeviceDetails,
    MboardInfo,
    ProbeReport,
    ProbeRequest,
    UhdSubprocessBackend,
    UhdUnavailable,
    UsrpBackend,
    UsrpError,
    UsrpNotFound,
    UsrpTimeout,
    evaluate,
    not_found_hints,
    not_found_message,
    probe,
    require_usrp,
    split_device_args,
)

__all__ = [
    "EXIT_CHECK_FAILED", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_UHD_UNAVAILABLE", "NOT_FOUND_PHRASE",
    "Check", "ChannelInfo", "DeviceDetails", "MboardInfo", "ProbeReport", "ProbeRequest",
    "UhdSubprocessBackend", "UhdUnavailable", "UsrpBackend", "UsrpError", "UsrpNotFound", "UsrpTimeout",
    "evaluate", "not_found_hints", "not_found_message", "probe", "require_usrp", "split_device_args",
]
