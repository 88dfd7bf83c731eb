"""Open flowgraphs in GNU Radio Companion's real GUI (under an X server, e.g. Xvfb), report what GRC
reports, save a screenshot of the window per flowgraph, quit. Used by tests/test_grc_gui.py and
scripts/tidy_grc.py:

    python tests/grc_open.py A.grc [B.grc ...] OUT_DIR    (prints one JSON line; OUT_DIR/A.png ...)

The JSON: `messages` (GRC's console lines), and per flowgraph path `errors` (its validation errors),
`missing` (blocks GRC does not know: their .block.yml was not found), `blocks` (each block's name and
on-canvas extent x0, y0, x1, y1 in pixels, ports included, as drawn), `connections`, `canvas` (the
visible drawing area's size in a 1400x900 window).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cairo
import gi

gi.require_version("Gtk", "3.0")
gi.require_version("PangoCairo", "1.0")
from gi.repository import GLib, Gtk  # noqa: E402
from gnuradio import gr  # noqa: E402
from gnuradio.grc.core import Messages  # noqa: E402

# isort: off
# GRC's own order (its main.py): Platform, then Application, then Actions; any other order is circular.
from gnuradio.grc.gui.Platform import Platform  # noqa: E402
from gnuradio.grc.gui.Application import Application  # noqa: E402
from gnuradio.grc.gui import Actions  # noqa: E402
# isort: on

WINDOW = (1400, 900)  # a laptop screen: the whole flowgraph should show without scrolling
SETTLE_MS = 1000  # GRC's start: the window shows and the first page is drawn
PAGE_MS = 150  # per page after switching to it: room for one layout pass (the viewport size)
MAX_WAITS = 100  # PAGE_MS each: how long to wait for the window to be mapped at most (15 s)


def main(flowgraphs: list[str], out_dir: str) -> int:
    messages: list[str] = []
    Messages.register_messenger(messages.append)
    platform = Platform(version=gr.version(), version_parts=(gr.major_version(), gr.api_version(),
                                                               gr.minor_version()),
                        prefs=gr.prefs(), install_prefix=gr.prefix())
    platform.build_library()
    platform.config.main_window_size(WINDOW)  # in memory; GRC saves its config on quit (HOME: the test's)
    app = Application(flowgraphs, platform)
    report: dict = {"flowgraphs": {}}
    todo = list(range(len(flowgraphs)))

    waits = [0]

    def inspect() -> bool:
        window = app.main_window
        if not window.is_drawable() and waits[0] < MAX_WAITS:
            # Not mapped yet (GRC's start took longer than SETTLE_MS on a loaded machine): drawing it now
            # gives a black image. Look again later.
            waits[0] += 1
            GLib.timeout_add(PAGE_MS, inspect)
            return False
        page = window.current_page
        flow_graph = page.flow_graph
        # Lay out labels and ports now (GRC does it on its next paint, which may not have happened yet on a
        # busy machine): the extents below are then the drawn ones.
        flow_graph.update()
        # And let GTK finish what is queued (the new page's size allocation and paint) before measuring
        # and drawing: on a loaded machine the first page was once captured before it had been laid out.
        while Gtk.events_pending():
            Gtk.main_iteration()
        canvas = page.viewport.get_allocation()  # the visible part of the canvas
        # Xvfb has no backing store to read back: draw the window into an image instead.
        size = window.get_allocation()
        surface = cairo.ImageSurface(cairo.FORMAT_RGB24, size.width, size.height)
        window.draw(cairo.Context(surface))
        surface.flush()
        if not any(surface.get_data()) and waits[0] < MAX_WAITS:
            # Nothing drawn yet (all black: GRC still starting beside other work); look again later.
            waits[0] += 1
            GLib.timeout_add(PAGE_MS, inspect)
            return False
        name = Path(page.file_path).stem
        surface.write_to_png(str(Path(out_dir) / f"{name}.png"))
        report["flowgraphs"][page.file_path] = {
            "errors": [str(e) for e in flow_graph.get_error_messages()],
            "missing": [b.key for b in flow_graph.blocks if b.is_dummy_block],
            "blocks": {b.name: [int(v) for v in b.get_extents()] for b in flow_graph.blocks},
            "connections": len(flow_graph.connections),
            "canvas": [canvas.width, canvas.height],
        }
        if todo:
            window.notebook.set_current_page(todo.pop(0))
            GLib.timeout_add(PAGE_MS, inspect)
            return False
        report["messages"] = "".join(messages).splitlines()
        print(json.dumps(report), flush=True)
        Actions.APPLICATION_QUIT()  # saved, unmodified flowgraphs: GRC quits (exit 0) without asking
        return False

    def first() -> bool:
        app.main_window.notebook.set_current_page(todo.pop(0))
        GLib.timeout_add(PAGE_MS, inspect)
        return False

    GLib.timeout_add(SETTLE_MS, first)
    app.run([])
    return 1  # GRC's quit exits the process; getting here means inspect() never finished


if __name__ == "__main__":
    Gtk.init(sys.argv)
    sys.exit(main(sys.argv[1:-1], sys.argv[-1]))
