"""`semcom usrp probe` and `require_usrp`.

Real paths on this machine (no radio attached): discovery through UHD in the child process, the
not-found message and exit status, from `semcom.cli.main`, from the module's own main and as a separate
process. Device-present paths: (a) an injected fake backend that returns device descriptions, checked
against the documented limits (B210: 30.72 MHz master clock with 2 channels); (b) the real child
process with a fake `uhd` module on PYTHONPATH, so the JSON pipeline, rate read-back, clock lock and
PPS checks run end to end; (c) a hanging fake `uhd` to exercise the timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import semcom.cli
from semcom.usrp import (
    EXIT_CHECK_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UHD_UNAVAILABLE,
    ChannelInfo,
    DeviceDetails,
    MboardInfo,
    ProbeRequest,
    UhdSubprocessBackend,
    UhdUnavailable,
    UsrpError,
    UsrpNotFound,
    UsrpTimeout,
    evaluate,
    not_found_message,
    probe,
    require_usrp,
    split_device_args,
)
from semcom.usrp import cli as usrp_cli
from semcom.usrp.cli import parse_channels, parse_si
from semcom.usrp.device_args import parse_device_args

# A serial no real device has: the real-discovery tests stay valid on a lab PC with a radio attached.
NO_SUCH = "serial=SEMCOM-NO-SUCH-USRP"


# ---------------------------------------------------------------------------- real, no device here
def test_cli_main_no_device(monkeypatch, capsys):
    monkeypatch.setattr(semcom.cli, "COMMAND_MODULES", ("semcom.usrp.cli",))
    rc = semcom.cli.main(["usrp", "probe", "--args", NO_SUCH, "--rate", "1M"])
    cap = capsys.readouterr()
    assert rc == EXIT_NOT_FOUND
    assert f'no USRP found for "{NO_SUCH}"' in cap.err
    assert "uhd_find_devices" in cap.err  # hints are there
    assert "Traceback" not in cap.err + cap.out


def test_module_main_no_device(capsys):
    rc = usrp_cli.main(["probe", "--args", NO_SUCH])
    cap = capsys.readouterr()
    assert rc == EXIT_NOT_FOUND
    assert cap.err.startswith(f'no USRP found for "{NO_SUCH}"')


def test_subprocess_no_device():
    cmd = [sys.executable, "-m", "semcom.usrp.cli", "probe", "--args", NO_SUCH, "--tx-channels", "0,1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_NOT_FOUND
    assert "no USRP found for" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_require_usrp_raises_not_found():
    with pytest.raises(UsrpNotFound) as info:
        require_usrp(NO_SUCH)
    assert str(info.value).startswith(f'no USRP found for "{NO_SUCH}"')
    assert isinstance(info.value, UsrpError)


# --------------------------------------------------------------------------------- pure helpers
def test_split_device_args_like_uhd():
    assert split_device_args("type=b200,serial=1") == ["type=b200,serial=1"]
    assert split_device_args("addr0=10.0.0.2,addr1=10.0.0.3,type=x300") == ["addr=10.0.0.2,type=x300",
                                                                           "addr=10.0.0.3"]
    assert split_device_args("") == [""]


def test_device_args_parsed_as_uhd_parses_them():
    """parse_device_args against python3-uhd's DeviceAddr, in a child process (uhd and gnuradio.uhd cannot
    share one); skipped where python3-uhd is not installed."""
    cases = ["type=b200,serial=123", " type = b200 , serial=1 ", "addr0=10.0.0.2,addr1=10.0.0.3,type=x300",
             "", ",,", "type=b200,type=x300", "mgmt_addr=1.2.3.4,,recv_frame_size",
             "master_clock_rate=30.72e6"]
    code = ("import json, sys, uhd\n"
            "print(json.dumps([uhd.types.DeviceAddr(a).to_dict() for a in json.loads(sys.argv[1])]))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode and "import" in proc.stderr.lower():
        pytest.skip(f"python3-uhd not importable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    assert [parse_device_args(a) for a in cases] == json.loads(proc.stdout)


def test_parsers_and_message():
    assert parse_channels("0, 1") == (0, 1) and parse_channels("") == ()
    assert parse_si("2.45G") == pytest.approx(2.45e9) and parse_si("500k") == 500e3
    assert parse_si("1e6") == 1e6 and parse_si(" 30.72M ") == pytest.approx(30.72e6)
    with pytest.raises(ValueError):
        parse_si("20 MHz")
    assert not_found_message("") == 'no USRP found for "" (empty args: any USRP)'


# ------------------------------------------------------------------------------ fake backend
def b210_details(rate_actual: float | None = None, ref_locked: bool | None = None,
                 pps_seen: bool | None = None) -> DeviceDetails:
    def chans(direction: str, gmax: float) -> list[ChannelInfo]:
        return [ChannelInfo(index=i, subdev=f"FE-{direction}{2 - i}", dboard="B210",
                            antennas=["TX/RX", "RX2"],
                            gain_range=[0.0, gmax, 1.0], freq_range=[50e6, 6e9, 0.0],
                            rate_range=[0.0625e6, 61.44e6, 0.0], rate_actual=rate_actual) for i in range(2)]

    mb = MboardInfo(name="B210", clock_sources=["internal", "external", "gpsdo"],
                    time_sources=["none", "internal", "external", "gpsdo"], master_clock_rate=16e6,
                    master_clock_range=[220e3, 61.44e6, 0.0], sensors=["ref_locked"], ref_locked=ref_locked,
                    pps_seen=pps_seen)
    return DeviceDetails(mboards=[mb], rx=chans("RX", 76.0), tx=chans("TX", 89.75))


B210_ADDR = {"type": "b200", "serial": "31AB5C7", "name": "bench-1", "product": "B210"}


class FakeBackend:
    """Device present: find() answers from a table, open() returns a fixed description (or raises)."""

    def __init__(self, found: dict[str, list[dict[str, str]]], details: DeviceDetails | Exception):
        self.found, self.details = found, details
        self.opened: list[tuple[str, ProbeRequest]] = []
        self.images_dir = "/usr/share/uhd/images"
        self.uhd_version = "4.3.0.0-fake"

    def find(self, args: str) -> list[dict[str, str]]:
        return [dict(d) for d in self.found.get(args, [])]

    def open(self, args: str, request: ProbeRequest) -> DeviceDetails:
        self.opened.append((args, request))
        if isinstance(self.details, Exception):
            raise self.details
        return self.details


def run_cli(argv: list[str], backend: FakeBackend, capsys) -> tuple[int, str, str]:
    parser = usrp_cli.argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    usrp_cli.register(sub)
    ns = parser.parse_args(["usrp", "probe", *argv])
    rc = usrp_cli.run_probe(ns, backend=backend)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_fake_b210_ready(capsys):
    backend = FakeBackend({"type=b200,master_clock_rate=20e6": [B210_ADDR]}, b210_details(rate_actual=20e6))
    rc, out, err = run_cli(["--args", "type=b200,master_clock_rate=20e6", "--tx-channels", "0,1",
                            "--rx-channels", "0,1", "--rate", "20M", "--freq", "2.45G", "--clock-source",
                            "internal", "--tx-gain", "60", "--rx-gain", "30"], backend, capsys)
    assert rc == EXIT_OK, out + err
    assert "product=B210" in out and "serial=31AB5C7" in out and "UHD 4.3.0.0-fake" in out
    assert "TX channels: 2" in out and "verdict: READY" in out
    assert "[FAIL]" not in out and err == ""
    # It opens exactly the found device, keeping the user's other args.
    args, request = backend.opened[0]
    assert "serial=31AB5C7" in args and "master_clock_rate=20e6" in args
    assert request.tx_channels == (0, 1) and request.rate == 20e6


@pytest.mark.parametrize(("n_chan", "rate", "ok"), [(2, 30.72e6, True), (2, 40e6, False), (1, 40e6, True),
                                                    (1, 61.44e6, True)])
def test_b2xx_master_clock_limit(n_chan, rate, ok):
    chans = tuple(range(n_chan))
    checks = evaluate(B210_ADDR, None, ProbeRequest(tx_channels=chans, rx_channels=chans, rate=rate))
    limit = [c for c in checks if c.name == "B2xx rate limit"]
    assert len(limit) == 1 and (limit[0].status == "OK") == ok
    assert ("30.72 MHz" in limit[0].detail) == (n_chan == 2)


def test_fake_b210_two_channels_too_fast(capsys):
    backend = FakeBackend({"": [B210_ADDR]}, b210_details())
    rc, out, _ = run_cli(["--tx-channels", "0,1", "--rate", "40M"], backend, capsys)
    assert rc == EXIT_CHECK_FAILED
    assert "[FAIL] B2xx rate limit" in out and "verdict: NOT READY" in out


def test_fake_failures_each_reported(capsys):
    backend = FakeBackend({"": [B210_ADDR]}, b210_details(ref_locked=False, pps_seen=False))
    rc, out, _ = run_cli(["--tx-channels", "0,2", "--rx-channels", "0", "--freq", "7G", "--rx-gain", "80",
                          "--clock-source", "external", "--time-source", "external"], backend, capsys)
    assert rc == EXIT_CHECK_FAILED
    assert "[FAIL] TX channels" in out and "missing: 2" in out
    assert "[FAIL] RX0 freq" in out and "[FAIL] TX0 freq" in out
    assert "[FAIL] RX0 gain" in out
    assert "reference PLL not locked" in out and "no PPS edge" in out
    backend = FakeBackend({"": [B210_ADDR]}, b210_details())
    rc, out, _ = run_cli(["--clock-source", "mimo"], backend, capsys)
    assert rc == EXIT_CHECK_FAILED and "'mimo' not available; options: internal, external, gpsdo" in out


def test_fake_coerced_rate_warns_but_passes(capsys):
    backend = FakeBackend({"": [B210_ADDR]}, b210_details(rate_actual=1.000128e6))
    rc, out, _ = run_cli(["--rx-channels", "0", "--rate", "1M"], backend, capsys)
    assert rc == EXIT_OK
    assert "[WARN] RX0 rate" in out and "1.00013 MHz" in out


def test_fake_open_failure_and_multiple_matches(capsys):
    other = dict(B210_ADDR, serial="31AB5C8")
    backend = FakeBackend({"type=b200": [B210_ADDR, other]}, UsrpError("RuntimeError: device busy"))
    rc, out, _ = run_cli(["--args", "type=b200"], backend, capsys)
    assert rc == EXIT_CHECK_FAILED
    assert "2 devices match" in out and out.count("[FAIL] open") == 2 and "device busy" in out
    assert {a for a, _ in backend.opened} == {"type=b200,serial=31AB5C7", "type=b200,serial=31AB5C8"}


def test_fake_no_open_lists_only(capsys):
    backend = FakeBackend({"": [B210_ADDR]}, b210_details())
    rc, out, _ = run_cli(["--no-open", "--json"], backend, capsys)
    assert rc == EXIT_OK and backend.opened == []
    data = json.loads(out)
    assert data["devices"][0]["found"]["serial"] == "31AB5C7" and data["devices"][0]["details"] is None


def test_fake_multi_device_one_missing(capsys):
    x310 = {"type": "x300", "addr": "10.0.0.2", "product": "X310", "serial": "3150000"}
    backend = FakeBackend({"addr=10.0.0.2": [x310]}, b210_details())
    rc, _, err = run_cli(["--args", "addr0=10.0.0.2,addr1=10.0.0.3"], backend, capsys)
    assert rc == EXIT_NOT_FOUND
    assert 'no USRP found for "addr0=10.0.0.2,addr1=10.0.0.3"' in err and "'addr=10.0.0.3'" in err
    assert "subnet" in err  # network hint for addr= args
    with pytest.raises(UsrpNotFound):
        require_usrp("addr0=10.0.0.2,addr1=10.0.0.3", backend=backend)
    require_usrp("addr=10.0.0.2", backend=backend)  # present: no exception


def test_unavailable_and_unexpected_errors(capsys):
    class NoUhd(FakeBackend):
        def find(self, args: str) -> list[dict[str, str]]:
            raise UhdUnavailable("UHD's Python API is not available (simulated)")

    rc, _, err = run_cli([], NoUhd({}, b210_details()), capsys)
    assert rc == EXIT_UHD_UNAVAILABLE and "not available" in err

    class Buggy(FakeBackend):
        def find(self, args: str) -> list[dict[str, str]]:
            raise KeyError("bug")

    rc, out, err = run_cli([], Buggy({}, b210_details()), capsys)
    assert rc == EXIT_CHECK_FAILED and "unexpected error" in err and "Traceback" not in err + out


def test_missing_images_hint():
    backend = FakeBackend({}, b210_details())
    backend.images_dir = ""
    report = probe("type=b200", backend=backend)
    assert report.exit_status == EXIT_NOT_FOUND
    assert any("uhd_images_downloader" in e for e in report.errors)


# ------------------------------------------------- real child process with a fake `uhd` module
FAKE_UHD = '''
import json, os, sys, threading
sys.stderr.write("[INFO] [UHD] linux; GNU C++ version 12.2.0; Boost_107400; UHD_9.8.7.6-fake\\n")
if os.environ.get("FAKE_UHD_BROKEN"):
    raise ImportError("simulated missing libuhd")

class _Addr:
    def __init__(self, d): self._d = d
    def to_dict(self): return dict(self._d)

class _Range:
    def __init__(self, a, b, s=0.0): self._r = (a, b, s)
    def start(self): return self._r[0]
    def stop(self): return self._r[1]
    def step(self): return self._r[2]

class _Sensor:
    def __init__(self, v): self.v = v
    def to_bool(self): return self.v

class _Time:
    def __init__(self, t): self.t = t
    def get_real_secs(self): return self.t

DEVICES = [{"type": "b200", "serial": "F00D", "name": "", "product": "B210"}]

def find(args):
    if os.environ.get("FAKE_UHD_HANG"):
        threading.Event().wait()
    hint = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    return [_Addr(d) for d in DEVICES if all(d.get(k) == v for k, v in hint.items())]

def get_images_dir(_): return "/fake/images"

class MultiUSRP:
    def __init__(self, args): self.args = args; self.rates = {}; self.pps = 0.0; self.clock = "internal"
    def get_num_mboards(self): return 1
    def get_mboard_name(self, m=0): return "B210"
    def get_clock_sources(self, m): return ["internal", "external", "gpsdo"]
    def get_time_sources(self, m): return ["none", "internal", "external", "gpsdo"]
    def get_master_clock_rate(self, m=0): return 16e6
    def get_master_clock_rate_range(self, m=0): return _Range(220e3, 61.44e6)
    def get_mboard_sensor_names(self, m=0): return ["ref_locked", "gps_locked"]
    def get_mboard_sensor(self, name, m=0): return _Sensor(self.clock == "external")
    def set_clock_source(self, s, m=0): self.clock = s
    def set_time_source(self, s, m=0): pass
    def get_time_last_pps(self, m=0):
        self.pps += 1.0  # a new edge at every poll
        return _Time(self.pps)
    def get_rx_num_channels(self): return 2
    def get_tx_num_channels(self): return 2
    def get_usrp_rx_info(self, c=0): return {"mboard_id": "B210", "rx_id": "B210 RX dboard", "rx_serial": ""}
    def get_usrp_tx_info(self, c=0): raise RuntimeError("no tx info")
    def get_rx_subdev_name(self, c=0): return "FE-RX" + str(2 - c)
    def get_tx_subdev_name(self, c=0): return "FE-TX" + str(2 - c)
    def get_rx_antennas(self, c=0): return ["TX/RX", "RX2"]
    def get_tx_antennas(self, c=0): return ["TX/RX"]
    def get_rx_gain_range(self, c=0): return _Range(0, 76, 1)
    def get_tx_gain_range(self, c=0): return _Range(0, 89.75, 0.25)
    def get_rx_freq_range(self, c=0): return _Range(50e6, 6e9)
    def get_tx_freq_range(self, c=0): return _Range(50e6, 6e9)
    def get_rx_rates(self, c=0): return _Range(62.5e3, 61.44e6)
    def get_tx_rates(self, c=0): return _Range(62.5e3, 61.44e6)
    def set_rx_rate(self, r, c=0): self.rates[("rx", c)] = 16e6 / round(16e6 / r)  # integer decimation
    def set_tx_rate(self, r, c=0): self.rates[("tx", c)] = 16e6 / round(16e6 / r)
    def get_rx_rate(self, c=0): return self.rates[("rx", c)]
    def get_tx_rate(self, c=0): return self.rates[("tx", c)]
    def get_pp_string(self): return "Device: B-Series Device (fake)"

class _UsrpNs:
    MultiUSRP = MultiUSRP

usrp = _UsrpNs()
'''


@pytest.fixture()
def fake_uhd_path(tmp_path: Path) -> Path:
    pkg = tmp_path / "uhd"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(FAKE_UHD))
    (tmp_path / "gnuradio").mkdir()  # shadows gr-uhd too, so "no UHD" can be simulated
    (tmp_path / "gnuradio" / "__init__.py").write_text("")
    return tmp_path


def fake_backend(path: Path, **env: str) -> UhdSubprocessBackend:
    return UhdSubprocessBackend(find_timeout_s=20, open_timeout_s=30,
                                extra_env={"PYTHONPATH": str(path), **env})


def test_worker_pipeline_with_fake_uhd(fake_uhd_path):
    backend = fake_backend(fake_uhd_path)
    req = ProbeRequest(tx_channels=(0, 1), rx_channels=(0,), rate=3e6, freq=2.45e9, clock_source="external",
                       time_source="external")
    report = probe("type=b200", req, backend=backend)
    text = "\n".join(report.lines)
    assert backend.uhd_version == "9.8.7.6-fake" and backend.images_dir == "/fake/images"
    assert "serial=F00D" in text and "motherboard 0: B210" in text and "RX channels: 2" in text
    # 16 MHz / 3 MHz is not an integer: the fake coerces to 16/5 = 3.2 MHz and the probe says so.
    assert "[WARN] RX0 rate" in text and "3.2 MHz" in text
    assert "'external' selected, ref_locked" in text and "PPS edges arriving" in text
    assert "UHD could not report tx0 info" in text  # one failing getter does not sink the report
    assert report.exit_status == EXIT_OK, text
    details = report.devices[0]["details"]
    assert details["rx"][0]["rate_actual"] == pytest.approx(3.2e6)
    assert details["mboards"][0]["ref_locked"] is True


def test_worker_not_found_and_broken_import(fake_uhd_path):
    assert fake_backend(fake_uhd_path).find("serial=OTHER") == []
    with pytest.raises(UhdUnavailable, match="simulated missing libuhd"):
        fake_backend(fake_uhd_path, FAKE_UHD_BROKEN="1").find("")
    report = probe("", backend=fake_backend(fake_uhd_path, FAKE_UHD_BROKEN="1"))
    assert report.exit_status == EXIT_UHD_UNAVAILABLE and "python3-uhd" in report.errors[0]


def test_worker_timeout(fake_uhd_path):
    backend = UhdSubprocessBackend(find_timeout_s=1.0,
                                   extra_env={"PYTHONPATH": str(fake_uhd_path), "FAKE_UHD_HANG": "1"})
    t0 = time.monotonic()
    with pytest.raises(UsrpTimeout, match="did not finish within 1 s"):
        backend.find("")
    assert time.monotonic() - t0 < 15
    with pytest.raises(UsrpNotFound, match='^no USRP found for "type=b200"'):
        require_usrp("type=b200", backend=backend)
    report = probe("", backend=backend)
    assert report.exit_status == EXIT_NOT_FOUND and "did not finish" in report.errors[0]

