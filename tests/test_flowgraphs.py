"""Every .grc compiles with grcc; USRP programs without a radio exit clearly; the split arrangement
(TX, channel, RX as three processes joined by ZeroMQ stream sockets) carries frames end to end."""

import socket
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml

from semcom.flowgraphs import compile_flowgraph, list_flowgraphs
from semcom.link import LinkClient
from semcom.ofat.equalize import reconstruct_payload
from semcom.ofat.frame import DEFAULT_GAP_SAMPLES, PRESETS, Mode, make_layout

GRC_FILES = list_flowgraphs()


def test_flowgraph_set_is_complete():
    names = {p.stem for p in GRC_FILES}
    assert {"loopback", "usrp_tx", "usrp_rx", "split_tx", "split_channel", "split_rx", "lab_b210_2x2",
            "lab_x310_2x2", "lab_dual_2x2", "lab_n2xx_1x1"} <= names


def test_layout_block_offers_the_frame_modules_presets_and_modes():
    # GRC's drop-downs for the layout block list what make_layout takes (frame.py is the source).
    yml = Path(__file__).resolve().parents[1] / "gr-semcom" / "grc" / "semcom_ofat_layout.block.yml"
    params = {p["id"]: p for p in yaml.safe_load(yml.read_text())["parameters"]}
    assert params["preset"]["options"] == list(PRESETS)
    assert params["mode"]["options"] == list(typing.get_args(Mode))
    assert params["preset"]["dtype"] == params["mode"]["dtype"] == "string"  # still takes an expression


REPO = Path(__file__).resolve().parents[1]


def test_every_gap_default_in_grc_and_yml_is_the_frame_modules():
    """GRC needs literal defaults, so the OFAT Transmitter's .block.yml and every .grc (flowgraphs/ and the
    examples) restate DEFAULT_GAP_SAMPLES; this keeps them from drifting. A .grc may pass a parameter
    block's name: its value is the default then."""
    yml = REPO / "gr-semcom" / "grc" / "semcom_ofat_tx.block.yml"
    params = {p["id"]: p for p in yaml.safe_load(yml.read_text())["parameters"]}
    assert int(params["gap_samples"]["default"]) == DEFAULT_GAP_SAMPLES
    checked = []
    for grc in [*GRC_FILES, *sorted((REPO / "gr-semcom" / "examples").glob("*.grc"))]:
        blocks = yaml.safe_load(grc.read_text())["blocks"]
        values = {b["name"]: b["parameters"].get("value") for b in blocks if b["id"] == "parameter"}
        for block in blocks:
            if block["id"] == "semcom_ofat_tx":
                gap = str(block["parameters"]["gap_samples"])
                assert int(values.get(gap, gap)) == DEFAULT_GAP_SAMPLES, f"{grc.name}: {block['name']}"
                checked.append(grc.stem)
    assert {"loopback", "usrp_tx", "split_tx", "network_loopback_3", "ofat_chain"} <= set(checked)


@pytest.mark.parametrize("grc", GRC_FILES, ids=lambda p: p.stem)
def test_grc_compiles_with_grcc(grc, tmp_path):
    py = compile_flowgraph(grc, out_dir=tmp_path)
    source = py.read_text()
    assert "from gnuradio import semcom" in source
    compile(source, str(py), "exec")


USRP_PROGRAMS = {"usrp_tx": ["--dev-args"], "usrp_rx": ["--dev-args"],
                 **{p.stem: ["--tx-args", "--rx-args"] for p in GRC_FILES if p.stem.startswith("lab_")}}


@pytest.mark.parametrize("name", sorted(USRP_PROGRAMS))
def test_usrp_program_without_radio_exits_with_clear_message(name, tmp_path):
    py = compile_flowgraph(name, out_dir=tmp_path)
    argv = [x for flag in USRP_PROGRAMS[name] for x in (flag, "serial=NOPE123")]
    proc = subprocess.run([sys.executable, str(py), *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'no USRP found for "serial=NOPE123"' in proc.stderr
    assert "Traceback" not in proc.stderr


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_split_arrangement_three_processes(tmp_path):
    tx_addr, cable1, cable2, rx_addr = (_free_endpoint() for _ in range(4))
    programs = {name: compile_flowgraph(name, out_dir=tmp_path / name) for name in
                ("split_rx", "split_channel", "split_tx")}
    procs = [
        subprocess.Popen([sys.executable, str(programs["split_rx"]), "--cable-in", cable2, "--rx-address",
                          rx_addr]),
        subprocess.Popen([sys.executable, str(programs["split_channel"]), "--cable-in", cable1, "--cable-out",
                          cable2, "--snr-db", "25"]),
        subprocess.Popen([sys.executable, str(programs["split_tx"]), "--tx-address", tx_addr, "--cable-out",
                          cable1]),
    ]
    layout = make_layout("wifi64", n_tx=2, n_rx=4)
    rng = np.random.default_rng(0)
    try:
        time.sleep(2.0)
        with LinkClient(tx_addr, rx_addr, timeout_s=15.0) as link:
            tensors = [rng.standard_normal((5, 64)).astype(np.float32) for _ in range(20)]
            sent = {link.send(v): v for v in tensors}
            nmse = []
            while link.in_flight():
                msg = link.receive(timeout_s=5.0)
                if msg is not None:
                    meta = msg.meta
                    est = reconstruct_payload(layout, msg.tensors["H"], msg.tensors["Y"], shape=meta["shape"],
                                              scale=meta["scale"], noise_var=meta["noise_var"], method="mmse")
                    nmse.append(np.sum((est - sent[msg.seq]) ** 2) / np.sum(sent[msg.seq] ** 2))
            summary = link.accounting.summary()
    finally:
        for p in procs:
            p.terminate()
        codes = [p.wait(timeout=20) for p in procs]
    assert summary["delivered"] >= 19 and summary["sent"] == summary["delivered"] + summary["lost"]
    assert 10 * np.log10(np.mean(nmse)) < -18  # 25 dB SNR, 2x4 MMSE: about -25 dB
    assert codes == [0, 0, 0]  # SIGTERM stops each flowgraph cleanly
