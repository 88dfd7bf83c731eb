"""Writes flowgraphs/network_loopback_<N>.grc: N OFAT links sharing the air through one
interference_channel (run once; the .grc is the source GRC opens, this only saves hand-placing blocks).
The committed network_loopback_3.grc was laid out again by hand in GRC afterwards: rerunning this for
N = 3 puts the blocks back at the generator's coordinates (same blocks, parameters and connections).

    .venv/bin/python experiments/network/make_flowgraph.py 3
"""

from __future__ import annotations

import sys
from pathlib import Path

from semcom.ofat.frame import DEFAULT_GAP_SAMPLES

ROOT = Path(__file__).resolve().parents[2]


def block(name: str, bid: str, params: dict[str, str], x: int, y: int) -> str:
    p = ", ".join(f"{k}: {v}" for k, v in {"alias": "''", "comment": "''", **params}.items())
    return (f"- name: {name}\n  id: {bid}\n  parameters: {{{p}}}\n  states:\n    coordinate: [{x}, {y}]\n"
            f"    rotation: 0\n    state: enabled\n")


def flowgraph(n: int) -> str:
    fid = f"network_loopback_{n}"
    desc = (f"{n} OFAT links sharing the air: per link tensors in over ZeroMQ -> ofat_tx (burst) -> a "
            f"stagger delay -> interference_channel (gains and noise set per frame on its control port by "
            f"semcom network live) -> ofat_rx -> frames out over ZeroMQ. The layout of link k has "
            f"sequence_id k (link_sequences = 1); the receivers estimate noise plus interference "
            f"(fit_residual).")
    out = ["options:\n  parameters: {author: gr-semcom, category: '[SemCom]', cmake_opt: '', comment: '', "
           f"copyright: GPL-3.0-or-later, description: '{desc}', gen_cmake: 'Off', gen_linking: dynamic, "
           f"generate_options: no_gui, hier_block_src_path: '.:', id: {fid}, max_nouts: '0', "
           "output_language: python, placement: '(0,0)', qt_qss_theme: '', realtime_scheduling: '', "
           "run: 'True', run_command: '{python} -u {filename}', run_options: run, sizing_mode: fixed, "
           f"thread_safe_setters: '', title: 'Network loopback, {n} links', window_size: '(1000,1000)'}}\n"
           "  states:\n    coordinate: [8, 8]\n    rotation: 0\n    state: enabled\n", "blocks:\n"]
    params = [("preset", "OFAT preset", "str", "wifi64"), ("mode", "Mode (complex/real)", "str", "complex"),
              ("train_reps", "Training repetitions", "intx", "2"),
              ("stagger", "Stagger between links (samples)", "intx", "0"),
              ("gap_samples", "Gap after each frame (samples)", "intx", str(DEFAULT_GAP_SAMPLES)),
              ("fill_power", "Idle interferer fill power", "eng_float", "0.8125"),
              ("interferer_cfo", "Interferer CFO max (cycles/sample)", "eng_float", "0.5 / 64"),
              ("seed", "Noise seed", "intx", "0"),
              # 1: link k's frames use sequence_id k (a receiver never takes another link's frame for its
              # own); 0: every link on the original sequences (the first live runs)
              ("link_sequences", "Link-specific sequences (1/0)", "intx", "1")]
    params += [(f"tx_address_{k}", f"Link {k} tensor input (bind)", "str",
                f"'tcp://127.0.0.1:{5600 + 2 * k}'") for k in range(n)]
    params += [(f"rx_address_{k}", f"Link {k} frame output (bind)", "str",
                f"'tcp://127.0.0.1:{5601 + 2 * k}'") for k in range(n)]
    for i, (pid, label, typ, val) in enumerate(params):
        fields = {"label": f"'{label}'", "short_id": "''", "type": typ, "value": val, "hide": "none"}
        out.append(block(pid, "parameter", fields, 16 + 180 * (i % 6), 120 + 100 * (i // 6)))
    y0 = 140 + 100 * ((len(params) + 5) // 6)
    for k in range(n):
        out.append(block(f"ofat_layout_{k}", "semcom_ofat_layout", {
            "preset": "preset", "n_tx": "'1'", "n_rx": "'1'", "mode": "mode", "train_reps": "train_reps",
            "header_reps": "'3'", "max_data_symbols": "'64'", "clip_ratio_db": "'0'",
            "sequence_id": f"{k} * link_sequences"}, 1100, 120 + 100 * k))
    for k in range(n):
        y = y0 + 120 * k
        out.append(block(f"tensor_source_{k}", "semcom_tensor_source", {
            "address": f"tx_address_{k}", "max_message_bytes": "64 * 1024 * 1024", "hwm": "'16'"}, 16, y))
        out.append(block(f"ofat_tx_{k}", "semcom_ofat_tx", {
            "layout": f"ofat_layout_{k}", "gap_samples": "gap_samples", "idle_fill": "'False'",
            "idle_chunk": "'1024'", "idle_sleep_s": "'0.002'", "max_queue": "'64'"}, 220, y))
        out.append(block(f"delay_{k}", "blocks_delay", {
            "type": "complex", "delay": f"{k} * stagger", "num_ports": "'1'", "vlen": "'1'",
            "affinity": "''", "maxoutbuf": "'0'", "minoutbuf": "'0'", "showports": "'False'"}, 440, y))
        out.append(block(f"ofat_rx_{k}", "semcom_ofat_rx", {
            "layout": f"ofat_layout_{k}", "threshold": "'0.2'", "phase_tracking": "'''linear'''",
            # the receiver's SNR estimate is then its SINR: what the BS observes (semcom.ofat.receiver)
            "noise_estimate": "'''fit_residual'''"}, 900, y))
        out.append(block(f"tensor_sink_{k}", "semcom_tensor_sink", {
            "address": f"rx_address_{k}", "hwm": "'64'", "send_timeout_ms": "'100'"}, 1100, y))
    out.append(block("semcom_interference_channel_0", "semcom_interference_channel", {
        "n_links": f"'{n}'", "noise_var": "'1e-3'", "fill_power": "fill_power",
        "interferer_cfo": "interferer_cfo", "seed": "seed"}, 650, y0 + 40))
    out.append("connections:\n")
    for k in range(n):
        out.append(f"- [tensor_source_{k}, tensors, ofat_tx_{k}, tensors]\n")
        out.append(f"- [ofat_tx_{k}, '0', delay_{k}, '0']\n")
        out.append(f"- [delay_{k}, '0', semcom_interference_channel_0, '{k}']\n")
        out.append(f"- [semcom_interference_channel_0, '{k}', ofat_rx_{k}, '0']\n")
        out.append(f"- [ofat_rx_{k}, frames, tensor_sink_{k}, frames]\n")
    out.append("metadata: {file_format: 1, grc_version: 3.10.5.1}\n")
    return "".join(out)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    path = ROOT / "flowgraphs" / f"network_loopback_{n}.grc"
    path.write_text(flowgraph(n))
    print(path)
