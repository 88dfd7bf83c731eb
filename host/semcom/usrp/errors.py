"""What stops a USRP from being used: one error class per cause, each with a clear message (no traceback)."""

from __future__ import annotations


class UsrpError(RuntimeError):
    """Base class: anything that stops a USRP from being used (clear message, no traceback needed)."""


class UsrpNotFound(UsrpError):
    """No device matches the device args. str() starts with 'no USRP found for "<args>"'."""


class UhdUnavailable(UsrpError):
    """Neither `import uhd` (python3-uhd) nor `from gnuradio import uhd` works."""


class UsrpTimeout(UsrpError):
    """UHD did not answer within the time limit (discovery or open)."""
