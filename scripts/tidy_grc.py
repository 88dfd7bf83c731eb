"""Lay out .grc flowgraphs so GNU Radio Companion opens them readable: no block overlaps another, the
Options block and the variables / parameters / GUI widgets sit in rows at the top, the signal and
message blocks in columns below them from sources (left) to sinks (right), so wires run left to right
between blocks instead of under them (a column that does not fit the width goes under the one
before it).

    .venv/bin/python scripts/tidy_grc.py flowgraphs/loopback.grc [...]     (rewrites the files)

Block sizes are measured as GRC draws them (tests/grc_open.py under Xvfb), and only the `coordinate:`
lines of the files change. tests/test_grc_gui.py checks the result (no overlap, the signal path on
screen in a 1400x900 window).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MAX_WIDTH = 1180  # the visible canvas of a 1400x900 GRC window is about 1199 x 625 px
MARGIN, GAP_X, GAP_Y = 8, 16, 16
COLUMN_GAP = 48  # room for the wires between signal-flow columns
ROW_GAP = 24  # between the widget rows and the signal flow


def measure(grcs: list[Path]) -> dict[str, dict]:
    """Per flowgraph: each block's drawn extent, from GRC itself under a throw-away Xvfb."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HOME=tmp)  # GRC writes its config on quit
        env["GRC_BLOCKS_PATH"] = os.pathsep.join(filter(None, [str(ROOT / "gr-semcom" / "grc"),
                                                               env.get("GRC_BLOCKS_PATH")]))
        proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable,
                               str(ROOT / "tests" / "grc_open.py"), *map(str, grcs), tmp],
                              capture_output=True, text=True, env=env, timeout=600, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])["flowgraphs"]


def flow_columns(names: list[str], edges: list[tuple[str, str, bool]]) -> list[list[str]]:
    """Connected blocks in columns: a block's column is the longest path to it from a source; within a
    column, ordered by their predecessors' mean position. edges: (from, to, is_stream).

    A loop (a probe that sends tensors and takes the reconstruction back) is cut where a depth-first
    walk closes it, the walk starting at blocks without stream inputs (message sources), fewest inputs
    first, so the loop's first block is its source and the edge back into it the one ignored."""
    succs: dict[str, list[str]] = defaultdict(list)
    n_in: dict[str, int] = defaultdict(int)
    stream_in = {b for _, b, stream in edges if stream}
    for a, b, _ in edges:
        if a != b and b not in succs[a]:
            succs[a].append(b)
            n_in[b] += 1
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    back: set[tuple[str, str]] = set()

    def walk(name: str) -> None:
        state[name] = 1
        for nxt in succs[name]:
            if state.get(nxt) == 1:
                back.add((name, nxt))
            elif nxt not in state:
                walk(nxt)
        state[name] = 2

    order = {name: i for i, name in enumerate(names)}
    for name in sorted(names, key=lambda n: (n in stream_in, n_in[n], order[n])):
        if name not in state:
            walk(name)
    preds: dict[str, list[str]] = defaultdict(list)
    for a in names:
        for b in succs[a]:
            if (a, b) not in back:
                preds[b].append(a)
    depth: dict[str, int] = {}

    def depth_of(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((depth_of(p) for p in preds[name]), default=-1)
        return depth[name]

    columns: list[list[str]] = [[] for _ in range(max(map(depth_of, names), default=-1) + 1)]
    for name in names:
        columns[depth[name]].append(name)
    for column in columns:
        column.sort(key=lambda n: (sum(order[p] for p in preds[n]) / len(preds[n]) if preds[n] else order[n]))
        for rank, name in enumerate(column):
            order[name] = rank
    return columns


def layout(doc: dict, extents: dict[str, list[int]], coords: dict[str, tuple[int, int]]) -> dict:
    """New coordinates: block name -> (x, y) of its anchor, so that its drawn extent lands where planned."""
    size = {n: (e[2] - e[0], e[3] - e[1]) for n, e in extents.items()}
    offset = {n: (e[0] - coords[n][0], e[1] - coords[n][1]) for n, e in extents.items()}
    # A connection is [from, port, to, port]; numeric ports are streams, named ones messages.
    edges = [(c[0], c[2], str(c[1]).isdigit()) for c in doc.get("connections") or []]
    connected = {n for a, b, _ in edges for n in (a, b)}
    options = doc["options"]["parameters"]["id"]
    header = [options] + [b["name"] for b in doc["blocks"] if b["name"] not in connected]
    flow = [b["name"] for b in doc["blocks"] if b["name"] in connected]
    placed: dict[str, tuple[int, int]] = {}

    def put(name: str, x: int, y: int) -> None:
        placed[name] = (x - offset[name][0], y - offset[name][1])

    # Skyline packing of the header blocks: each goes where its top is highest (then leftmost), so a
    # tall Options / OFAT Layout block leaves room for two rows of parameters beside it.
    skyline = [(MARGIN, MAX_WIDTH, MARGIN)]  # (x0, x1, y where free space starts), left to right
    for name in header:
        w, h = size[name]
        fits = [(max(y for x0, x1, y in skyline if x1 > sx and x0 < sx + w), sx)
                for sx, _, _ in skyline if sx + w <= MAX_WIDTH or sx == MARGIN]
        y, x = min(fits)
        put(name, x, y)
        right = x + w + GAP_X
        skyline = ([(x0, min(x1, x), sy) for x0, x1, sy in skyline if x0 < x]
                   + [(x, right, y + h + GAP_Y)]
                   + [(max(x0, right), x1, sy) for x0, x1, sy in skyline if x1 > right])
    top = max(sy for _, _, sy in skyline) - GAP_Y + ROW_GAP
    x, last_x, last_bottom = MARGIN, MARGIN, top
    for column in flow_columns(flow, edges):
        width = max(size[n][0] for n in column)
        if x > MARGIN and x + width > MAX_WIDTH:
            # Past the right edge: under the previous column instead (a short wire down, not a band)
            x, top = max(MARGIN, min(last_x, MAX_WIDTH - width)), last_bottom + ROW_GAP
        y = top
        for name in column:
            put(name, x, y)
            y += size[name][1] + GAP_Y
        last_x, last_bottom = x, y - GAP_Y
        x += width + COLUMN_GAP
    return placed


def rewrite(path: Path, doc: dict, placed: dict[str, tuple[int, int]]) -> None:
    """Replace each block's `coordinate: [x, y]` line, leaving every other line as it is."""
    options = doc["options"]["parameters"]["id"]
    current = None
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("options:"):
            current = options
        elif m := re.match(r"- name: (\S+)", line):
            current = m.group(1)
        elif current in placed and (m := re.match(r"(\s+coordinate: )\[[^\]]*\]", line)):
            x, y = placed[current]
            lines[i] = f"{m.group(1)}[{x}, {y}]{line[m.end():]}"
    path.write_text("".join(lines))


def main(paths: list[str]) -> int:
    grcs = [Path(p).resolve() for p in paths]
    measured = measure(grcs)
    for grc in grcs:
        doc = yaml.safe_load(grc.read_text())
        coords = {b["name"]: tuple(b["states"]["coordinate"]) for b in doc["blocks"]}
        coords[doc["options"]["parameters"]["id"]] = tuple(doc["options"]["states"]["coordinate"])
        placed = layout(doc, measured[str(grc)]["blocks"], coords)
        rewrite(grc, doc, placed)
        print(f"{grc.name}: {len(placed)} blocks placed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
