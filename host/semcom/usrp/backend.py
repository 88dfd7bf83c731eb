"""How the probe reaches UHD: the `UsrpBackend` protocol (find + open) and `UhdSubprocessBackend`, which runs
UHD in a child process (`_uhd_worker.py`) with a timeout. Tests inject a fake backend instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from semcom.usrp.errors import UhdUnavailable, UsrpError, UsrpTimeout
from semcom.usrp.model import DeviceDetails, ProbeRequest

_WORKER = Path(__file__).with_name("_uhd_worker.py")
_MARK = "SEMCOM_UHD_RESULT "


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
