"""USRP side of the testbed: device discovery and checks (`semcom usrp probe`, `require_usrp`).

Importing this package never imports UHD: UHD runs in a child process (see backend.py). One job per
module: device_args (UHD's device-args strings), backend (reaching UHD), model (request and device
description), checks, report (what is printed, exit statuses), probe (runs them), cli (`semcom usrp`).
"""

from semcom.usrp.backend import UhdSubprocessBackend, UsrpBackend
from semcom.usrp.checks import Check, evaluate
from semcom.usrp.device_args import split_device_args
from semcom.usrp.errors import UhdUnavailable, UsrpError, UsrpNotFound, UsrpTimeout
from semcom.usrp.model import ChannelInfo, DeviceDetails, MboardInfo, ProbeRequest
from semcom.usrp.probe import probe, require_usrp
from semcom.usrp.report import (
    EXIT_CHECK_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UHD_UNAVAILABLE,
    NOT_FOUND_PHRASE,
    ProbeReport,
    not_found_hints,
    not_found_message,
)

__all__ = [
    "EXIT_CHECK_FAILED", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_UHD_UNAVAILABLE", "NOT_FOUND_PHRASE",
    "Check", "ChannelInfo", "DeviceDetails", "MboardInfo", "ProbeReport", "ProbeRequest",
    "UhdSubprocessBackend", "UhdUnavailable", "UsrpBackend", "UsrpError", "UsrpNotFound", "UsrpTimeout",
    "evaluate", "not_found_hints", "not_found_message", "probe", "require_usrp", "split_device_args",
]
