#!/usr/bin/env python3
"""Where the ZeroMQ bridge's round trip goes, and the bridge's implementations side by side, in one run.

    .venv/bin/python benchmarks/profile_bridge.py [--round-trips 1000] [--before REV]

1. Stages (wall time, medians) of the Python blocks: one 5x256 float32 tensor in flight, LinkClient ->
   tensor_source -> (GNU Radio message) -> tensor_sink -> LinkClient, each block's handler time-stamped.
2. Round trips of the working tree's bridge with the Python blocks and with the compiled ones (where
   built), a floor bridge (the Python blocks and host client with no conversions: the source posts
   the seq as a PMT integer, the sink sends a FRAME encoded beforehand), a bare pyzmq echo thread and,
   with --before REV, the bridge blocks and host client as they were at git revision REV
   (tensor_source, tensor_sink, bridge_socket, messages, wire, link, loaded from `git show` into a
   temporary package), interleaved in blocks of 50 round trips in this one process, so all of them
   see the same machine load.

    .venv/bin/python benchmarks/profile_bridge.py --loopback [--frames 300] [--rounds 2]

3. The effect on the 2x4 loopback (benchmarks/run.py's end-to-end part: 20 dB, 5x256 tensors): latency
   one tensor in flight and frames/s at window 8, with the Python and the compiled bridge blocks
   alternating (SEMCOM_BRIDGE), `--rounds` times.
See benchmarks/PROFILE.md.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pmt
from gnuradio import gr, semcom
from gnuradio.semcom.tensor_sink import tensor_sink_python
from gnuradio.semcom.tensor_source import tensor_source_python

from semcom.link import LinkClient
from semcom.wire import HEADER, MAGIC, VERSION, Kind, decode, encode, send_parts

ROOT = Path(__file__).resolve().parent.parent
# What a round trip through the bridge runs, by path in the repository.
BRIDGE_FILES = {"messages": "gr-semcom/python/semcom/messages.py",
                "bridge_socket": "gr-semcom/python/semcom/bridge_socket.py",
                "tensor_source": "gr-semcom/python/semcom/tensor_source.py",
                "tensor_sink": "gr-semcom/python/semcom/tensor_sink.py",
                "wire": "host/semcom/wire.py", "link": "host/semcom/link.py"}
STAMPS: dict[str, float] = {}


class TimedSource(tensor_source_python):
    def _handle(self, parts) -> None:
        STAMPS["source_in"] = time.perf_counter()
        super()._handle(parts)
        STAMPS["source_out"] = time.perf_counter()


class TimedSink(tensor_sink_python):
    def _on_frame(self, msg) -> None:
        STAMPS["sink_in"] = time.perf_counter()
        super()._on_frame(msg)
        STAMPS["sink_out"] = time.perf_counter()


class FloorSource(tensor_source_python):
    """tensor_source without conversions: posts the wire header's seq as a PMT integer."""

    def _handle(self, parts) -> None:
        self.message_port_pub(self._port, pmt.from_uint64(HEADER.unpack(bytes(parts[0]))[4]))


class FloorSink(tensor_sink_python):
    """tensor_sink without conversions: sends a FRAME encoded beforehand, with the posted seq."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._frame = encode(Kind.FRAME, 0, {"x": tensor()}, {"seq": 0})

    def _on_frame(self, msg) -> None:
        head = HEADER.pack(MAGIC, VERSION, Kind.FRAME, 1, pmt.to_uint64(msg))
        with self._lock:
            send_parts(self._sock, [head, *self._frame[1:]])


def tensor() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((5, 256)).astype(np.float32)


def stages(n: int) -> dict[str, float]:
    """Median microseconds of each stage of a bridge round trip (the working tree's Python blocks)."""
    tb = gr.top_block()
    src = TimedSource("tcp://127.0.0.1:*")
    snk = TimedSink("tcp://127.0.0.1:*", send_timeout_ms=1000)
    tb.msg_connect((src, "tensors"), (snk, "frames"))
    tb.start()
    x = tensor()
    out: dict[str, list[float]] = collections.defaultdict(list)
    try:
        with LinkClient(src.endpoint(), snk.endpoint(), timeout_s=5.0) as link:
            for i in range(n + 50):
                t0 = time.perf_counter()
                link.send(x)
                t1 = time.perf_counter()
                assert link.receive(timeout_s=5.0) is not None
                t2 = time.perf_counter()
                if i < 50:  # warm-up
                    continue
                s = STAMPS
                for name, value in (
                        ("host: encode + send", t1 - t0),
                        ("ZeroMQ to the source's thread (wake-up)", s["source_in"] - t1),
                        ("tensor_source: wire decode + PMT build + post", s["source_out"] - s["source_in"]),
                        ("GNU Radio message hop to the sink's thread", s["sink_in"] - s["source_out"]),
                        ("tensor_sink: PMT read + wire encode + send", s["sink_out"] - s["sink_in"]),
                        ("ZeroMQ to the host + receive + decode", t2 - s["sink_out"]),
                        ("**round trip**", t2 - t0)):
                    out[name].append(value)
    finally:
        tb.stop()
        tb.wait()
    return {k: statistics.median(v) * 1e6 for k, v in out.items()}


def load_revision(rev: str, into: Path) -> dict[str, ModuleType]:
    """The bridge modules as they were at `rev`, imported as the package `bridge_at_rev` (their imports
    of each other rewritten to stay inside it)."""
    package = into / "bridge_at_rev"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, path in BRIDGE_FILES.items():
        text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout
        text = text.replace("from semcom.wire import", "from .wire import")  # the revision's wire
        text = text.replace("from .ofat_tx import", "from gnuradio.semcom.ofat_tx import")  # not copied
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(into))
    return {name: importlib.import_module(f"bridge_at_rev.{name}") for name in BRIDGE_FILES}


class Bridge:
    """A running tensor_source -> tensor_sink flowgraph and its LinkClient, from one set of modules."""

    def __init__(self, source_cls: type, sink_cls: type, client_cls: type):
        self.tb = gr.top_block()
        self.src = source_cls("tcp://127.0.0.1:*")
        self.snk = sink_cls("tcp://127.0.0.1:*", send_timeout_ms=1000)
        self.tb.msg_connect((self.src, "tensors"), (self.snk, "frames"))
        self.tb.start()
        self.link = client_cls(self.src.endpoint(), self.snk.endpoint(), timeout_s=5.0)

    def round_trip(self, x: np.ndarray) -> float:
        t0 = time.perf_counter()
        self.link.send(x)
        assert self.link.receive(timeout_s=5.0) is not None
        return time.perf_counter() - t0

    def close(self) -> None:
        self.link.close()
        self.tb.stop()
        self.tb.wait()


def implementation(name: str):
    """A bridge block factory taking (address, **options), for one implementation."""
    return lambda make: lambda *args, **kwargs: make(*args, implementation=name, **kwargs)


def compare(n: int, rev: str | None = None, block: int = 50) -> dict[str, list[float]]:
    """Seconds per round trip: the Python and the compiled bridge, the floor, a bare pyzmq echo and the
    bridge at `rev`; interleaved."""
    sys.path.insert(0, str(Path(__file__).parent))
    import run  # the bare echo of the benchmarks (same encode/decode on the host)

    x = tensor()
    times: dict[str, list[float]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        python, cxx = implementation("python"), implementation("cxx")
        bridges = {"bridge, Python blocks": Bridge(python(semcom.tensor_source), python(semcom.tensor_sink),
                                                   LinkClient)}
        if getattr(semcom.semcom_python, "tensor_source_fast", None) is not None:
            bridges["bridge, compiled blocks"] = Bridge(cxx(semcom.tensor_source), cxx(semcom.tensor_sink),
                                                        LinkClient)
        bridges["bridge floor (Python blocks, no conversions)"] = Bridge(FloorSource, FloorSink, LinkClient)
        if rev:
            old = load_revision(rev, Path(tmp))
            bridges[f"bridge at {rev}"] = Bridge(old["tensor_source"].tensor_source,
                                                 old["tensor_sink"].tensor_sink, old["link"].LinkClient)
        import zmq

        ctx = zmq.Context.instance()
        a_out, a_in = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        try:
            with run.echo_peer() as (echo_in, echo_out):
                a_out.connect(echo_in)
                a_in.connect(echo_out)
                for round_ in range(-(-n // block) + 1):  # round 0 warms everything up
                    for name, bridge in bridges.items():
                        for _ in range(block):
                            t = bridge.round_trip(x)
                            if round_:
                                times[name].append(t)
                    for i in range(block):
                        t0 = time.perf_counter()
                        a_out.send_multipart(encode(Kind.TENSOR, i, {"x": x}))
                        decode(a_in.recv_multipart())
                        if round_:
                            times["bare pyzmq echo"].append(time.perf_counter() - t0)
        finally:
            a_out.close(linger=0)
            a_in.close(linger=0)
            for bridge in bridges.values():
                bridge.close()
    return times


def loopback_effect(n_frames: int, rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    """(median latency ms, p99 latency ms, frames/s at window 8) of the 2x4 loopback per bridge
    implementation and round, the implementations alternating."""
    sys.path.insert(0, str(Path(__file__).parent))
    import run

    out: dict[str, list[tuple[float, float, float]]] = collections.defaultdict(list)
    before = os.environ.get("SEMCOM_BRIDGE")
    try:
        for _ in range(rounds):
            for name in ("python", "cxx"):
                os.environ["SEMCOM_BRIDGE"] = name  # what the loopback flowgraph's blocks are made with
                latency = np.array(run.loopback_latencies(n_frames)) * 1e3
                rate, delivered = run.loopback_rate(n_frames, 8)
                assert delivered == 1.0, f"{name}: {delivered:.3f} of the frames delivered"
                out[name].append((float(np.median(latency)), float(np.percentile(latency, 99)), rate))
    finally:
        if before is None:
            os.environ.pop("SEMCOM_BRIDGE", None)
        else:
            os.environ["SEMCOM_BRIDGE"] = before
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--before", metavar="REV", help="also compare with the bridge at this git revision")
    parser.add_argument("--loopback", action="store_true", help="the 2x4 loopback with each bridge instead")
    parser.add_argument("--frames", type=int, default=300, help="frames per loopback measurement")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the loopback measurements")
    args = parser.parse_args()
    if args.loopback:
        print(f"2x4 loopback, 20 dB, 5x256, {args.frames} frames (load average {os.getloadavg()[0]:.1f})\n")
        print("| bridge blocks | round | latency median ms | latency p99 ms | frames/s, window 8 |")
        print("| --- | --- | --- | --- | --- |")
        for name, runs in loopback_effect(args.frames, args.rounds).items():
            for i, (med, p99, rate) in enumerate(runs):
                print(f"| {name} | {i + 1} | {med:.2f} | {p99:.2f} | {rate:.0f} |")
        return 0
    print("| bridge stage, Python blocks (5x256 float32, one in flight) | median us |\n| --- | --- |")
    for name, us in stages(args.round_trips).items():
        print(f"| {name} | {us:.0f} |")
    times = compare(args.round_trips, args.before)
    bare = statistics.median(times["bare pyzmq echo"])
    print("\n| round trip, one process, interleaved | median us | p99 us | / bare |")
    print("| --- | --- | --- | --- |")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med * 1e6:.0f} | {np.percentile(values, 99) * 1e6:.0f} | {med / bare:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
