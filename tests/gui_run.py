"""Run a QT GUI flowgraph without a display (QT_QPA_PLATFORM=offscreen), move its QT GUI Range
sliders, and report what its Link Probe and labels show. Used by tests/test_gui_flowgraphs.py:

    python tests/gui_run.py loopback_gui SCREENSHOT.png

Prints one JSON line: per step (the variable settings applied), the Link Probe's statistics over the
frames delivered after the change, and the label texts; then saves a screenshot of the window.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt5 import Qt  # noqa: E402

from semcom.flowgraphs import top_block_class  # noqa: E402

# Slider settings, each held until `FRAMES` new frames came back after the change.
STEPS = [{"snr_db": 30.0}, {"snr_db": 10.0}, {"cfo": 0.3}]
FRAMES, STEP_TIMEOUT_S = 25, 40.0


def main(name: str, screenshot: str) -> int:
    app = Qt.QApplication([name])
    tb = top_block_class(name)()
    probe = tb.semcom_link_probe_0
    tb.start()
    tb.resize(1200, 900)
    tb.show()
    try:
        report = run_steps(app, tb, probe)
        tb.grab().save(screenshot)
    finally:
        tb.stop()
        tb.wait()
    print(json.dumps(report), flush=True)
    return 0


def run_steps(app: Qt.QApplication, tb, probe) -> dict:

    def pump_until(done) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not done() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        for _ in range(20):  # let the labels' queued updates land (probes poll at 4 Hz)
            app.processEvents()
            time.sleep(0.02)

    report = {"steps": []}
    for step in STEPS:
        for var, value in step.items():
            # Through the QT GUI Range widget itself: its counter moves the slider and calls the
            # flowgraph's setter, which sets the running channel.
            getattr(tb, f"_{var}_win").d_widget.counter.setValue(value)
            assert getattr(tb, f"get_{var}")() == value
        start = probe.stats()["delivered"]
        pump_until(lambda start=start: probe.stats()["delivered"] >= start + FRAMES)
        time.sleep(0.3)
        for _ in range(10):
            app.processEvents()
        labels = {k: getattr(tb, f"_{k}_label").text() for k in ("nmse_label", "snr_label", "cfo_label",
                                                                 "status_label")}
        report["steps"].append({"set": step, "stats": probe.stats(), "labels": labels})
    return report


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
