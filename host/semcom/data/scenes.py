"""Procedural CLEVR-like scenes: scene graphs and vectorized numpy rendering.

A scene is a list of 3-6 objects with a shape (cube / sphere / cylinder), one of CLEVR's 8 colours, a
size (small / large) and a position. Positions are stored in *normalised* image coordinates
(x to the right, y downwards, both in [0, 1]) so one scene graph renders at any resolution.
The "camera" looks down at a table, so an object lower in the image (larger y) is *in front of* an
object higher up, exactly as in CLEVR images.

Relations follow CLEVR's convention: ``scene.relations()["left"][i]`` lists the indices of the
objects that are left of object ``i`` (strictly smaller x); "right", "front" (larger y) and "behind"
(smaller y) likewise. Placement guarantees that no two objects' bounding boxes overlap and that any
two centres differ by at least ``MIN_SEPARATION`` in both x and y, so every relation is visible.

Drawing is done with boolean masks over the whole pixel grid (numpy broadcasting), supersampled 2x
and box-filtered for smooth edges. Everything is deterministic given the seed / Generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder")
COLORS: tuple[str, ...] = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
SIZES: tuple[str, ...] = ("small", "large")
RELATIONS: tuple[str, ...] = ("left", "right", "front", "behind")

# CLEVR's own RGB values for its 8 colours (from the CLEVR generation code's properties.json).
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}

# Characteristic radius of an object, as a fraction of the image side.
SIZE_RADIUS: dict[str, float] = {"small": 0.065, "large": 0.1}
# Half extents (half width, half height) of each shape's bounding box in units of its radius.
SHAPE_HALF_EXTENT: dict[str, tuple[float, float]] = {
    "cube": (0.85, 0.85),
    "sphere": (1.0, 1.0),
    "cylinder": (0.75, 1.0),
}
MIN_GAP = 0.02  # minimum free space between two bounding boxes (normalised units)
MIN_SEPARATION = 0.03  # minimum |dx| and |dy| between two centres, so left/right/front/behind are clear
BORDER = 0.02  # minimum distance from a bounding box to the image border
DEFAULT_SIZE = 64
N_OBJECTS_RANGE = (3, 6)


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene graph.

    x, y: centre in normalised image coordinates ([0, 1], y downwards). ``material`` and ``depth``
    are only set for scenes converted from CLEVR (``depth`` = distance to the camera; smaller = front).
    """

    shape: str
    color: str
    size: str
    x: float
    y: float
    material: str | None = None
    depth: float | None = None

    @property
    def radius(self) -> float:
        return SIZE_RADIUS.get(self.size, 0.08)

    @property
    def half_extent(self) -> tuple[float, float]:
        """(half width, half height) of the bounding box in normalised units."""
        hw, hh = SHAPE_HALF_EXTENT.get(self.shape, (1.0, 1.0))
        return hw * self.radius, hh * self.radius

    def pixel_center(self, image_size: int) -> tuple[float, float]:
        """Centre in pixel coordinates (column, row), pixel centres at integer + 0.5."""
        return self.x * image_size, self.y * image_size

    def phrase(self) -> str:
        """'large red sphere' (plus material when known)."""
        words = [self.size, self.color] + ([self.material] if self.material else []) + [self.shape]
        return " ".join(words)


@dataclass
class Scene:
    """A scene graph: objects plus relations derived from their positions.

    ``relationships`` may be given explicitly (CLEVR scene files carry their own); otherwise it is
    computed from positions (see module docstring).
    """

    objects: list[SceneObject]
    relationships: dict[str, list[list[int]]] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.objects)

    def relations(self) -> dict[str, list[list[int]]]:
        """CLEVR-convention relations: rel -> for each object i, the sorted list of j with `j rel i`."""
        if self.relationships is not None:
            return self.relationships
        xy = np.array([[o.x, o.y] for o in self.objects], dtype=np.float64).reshape(-1, 2)
        if all(o.depth is not None for o in self.objects) and self.objects:
            # Depth from the camera: smaller depth = in front.
            front_key = -np.array([o.depth for o in self.objects], dtype=np.float64)
        else:
            front_key = xy[:, 1]
        x = xy[:, 0]
        # mat[i, j] is True when object j stands in the relation to object i.
        mats = {
            "left": x[None, :] < x[:, None],
            "right": x[None, :] > x[:, None],
            "front": front_key[None, :] > front_key[:, None],
            "behind": front_key[None, :] < front_key[:, None],
        }
        return {r: [np.flatnonzero(m[i]).tolist() for i in range(len(x))] for r, m in mats.items()}

    def to_dict(self) -> dict:
        """JSON-serialisable form (round trip with :meth:`from_dict`)."""
        return {
            "objects": [asdict(o) for o in self.objects],
            "relationships": self.relations(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls([SceneObject(**o) for o in d["objects"]], d.get("relationships"))


def _overlaps(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Candidate boxes (C, 4: x, y, hw, hh) against placed boxes (P, 4) -> (C,) bool: too close."""
    if boxes.shape[0] == 0:
        return np.zeros(box.shape[0], dtype=bool)
    dx = np.abs(box[:, None, 0] - boxes[None, :, 0])
    dy = np.abs(box[:, None, 1] - boxes[None, :, 1])
    hit = (dx < box[:, None, 2] + boxes[None, :, 2] + MIN_GAP) & \
        (dy < box[:, None, 3] + boxes[None, :, 3] + MIN_GAP)
    ambiguous = (dx < MIN_SEPARATION) | (dy < MIN_SEPARATION)
    return (hit | ambiguous).any(axis=1)


def generate_scene(rng: np.random.Generator, n_objects: int | None = None,
                   n_objects_range: tuple[int, int] = N_OBJECTS_RANGE) -> Scene:
    """Sample one scene graph (no rendering). Vectorized rejection sampling of positions.

    n_objects: exact number of objects, else uniform in ``n_objects_range`` (inclusive).
    """
    lo, hi = n_objects_range
    n = int(n_objects) if n_objects is not None else int(rng.integers(lo, hi + 1))
    for _ in range(100):
        shapes = rng.integers(0, len(SHAPES), n)
        colors = rng.integers(0, len(COLORS), n)
        sizes = rng.integers(0, len(SIZES), n)
        placed = np.zeros((0, 4))
        for k in range(n):
            hwf, hhf = SHAPE_HALF_EXTENT[SHAPES[shapes[k]]]
            r = SIZE_RADIUS[SIZES[sizes[k]]]
            hw, hh = hwf * r, hhf * r
            cand = np.empty((256, 4))
            cand[:, 0] = rng.uniform(hw + BORDER, 1 - hw - BORDER, 256)
            cand[:, 1] = rng.uniform(hh + BORDER, 1 - hh - BORDER, 256)
            cand[:, 2], cand[:, 3] = hw, hh
            ok = np.flatnonzero(~_overlaps(cand, placed))
            if ok.size == 0:
                break
            placed = np.vstack([placed, cand[ok[0]]])
        if placed.shape[0] == n:
            objs = [SceneObject(SHAPES[shapes[k]], COLORS[colors[k]], SIZES[sizes[k]],
                                round(float(placed[k, 0]), 4), round(float(placed[k, 1]), 4))
                    for k in range(n)]
            return Scene(objs)
    raise RuntimeError(f"could not place {n} objects without overlap")  # pragma: no cover


def generate_scenes(n: int, seed: int, n_objects_range: tuple[int, int] = N_OBJECTS_RANGE) -> list[Scene]:
    """``n`` scene graphs, deterministic by ``seed``."""
    rng = np.random.default_rng(seed)
    return [generate_scene(rng, n_objects_range=n_objects_range) for _ in range(n)]


_LIGHT = np.array([-0.45, -0.55, 0.70])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)


def object_mask_and_shade(obj: SceneObject, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask and brightness of one object on a pixel grid.

    u, v: (H, W) normalised coordinates of pixel centres. Returns mask (H, W) bool and shade (H, W)
    float (about 1.0 at the object's centre, so the centre pixel shows the object's true colour).
    """
    r = obj.radius
    du, dv = u - obj.x, v - obj.y
    if obj.shape == "sphere":
        d2 = (du * du + dv * dv) / (r * r)
        mask = d2 <= 1.0
        nz = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
        lamb = np.clip((du / r) * _LIGHT[0] + (dv / r) * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
        shade = 0.3 + 0.7 * lamb / _LIGHT[2]  # = 1.0 at the centre
        spec = np.exp(-((du / r + 0.35) ** 2 + (dv / r + 0.4) ** 2) / 0.02)
        shade = shade + 0.5 * spec
    elif obj.shape == "cube":
        a = SHAPE_HALF_EXTENT["cube"][0] * r
        mask = (np.abs(du) <= a) & (np.abs(dv) <= a)
        shade = np.ones_like(u)
        shade = np.where(dv < -0.55 * a, 1.3, shade)  # top face catches the light
        shade = np.where((du > 0.55 * a) & (dv >= -0.55 * a), 0.7, shade)  # side face in shadow
    elif obj.shape == "cylinder":
        hwf, hhf = SHAPE_HALF_EXTENT["cylinder"]
        w, h = hwf * r, hhf * r
        e = 0.3 * w  # semi-minor axis of the elliptical caps
        body = (np.abs(du) <= w) & (np.abs(dv) <= h - e)
        cap_top = (du / w) ** 2 + ((dv + h - e) / e) ** 2 <= 1.0
        cap_bot = (du / w) ** 2 + ((dv - h + e) / e) ** 2 <= 1.0
        mask = body | cap_top | cap_bot
        shade = 0.45 + 0.55 * np.sqrt(np.clip(1.0 - (du / w) ** 2, 0.0, 1.0))  # round side
        shade = np.where(cap_top, 1.3, shade)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}; known: {SHAPES}")
    return mask, shade


def render_scene(scene: Scene, image_size: int = DEFAULT_SIZE, supersample: int = 2) -> np.ndarray:
    """Render a scene graph -> uint8 image (image_size, image_size, 3), HWC.

    The background is a light gray floor (brighter towards the bottom); objects are drawn with
    their masks; ``supersample`` x ``supersample`` box filtering anti-aliases edges.
    """
    s = int(image_size) * int(supersample)
    c = (np.arange(s, dtype=np.float64) + 0.5) / s
    u, v = np.meshgrid(c, c)  # (s, s): u = column coordinate, v = row coordinate
    img = np.repeat((0.64 + 0.14 * v)[:, :, None], 3, axis=2)
    for obj in scene.objects:
        # Only the object's bounding-box window is touched (objects never overlap).
        hw, hh = obj.half_extent
        r0, r1 = max(int((obj.y - hh) * s) - 1, 0), min(int((obj.y + hh) * s) + 2, s)
        c0, c1 = max(int((obj.x - hw) * s) - 1, 0), min(int((obj.x + hw) * s) + 2, s)
        win = (slice(r0, r1), slice(c0, c1))
        mask, shade = object_mask_and_shade(obj, u[win], v[win])
        rgb = np.asarray(COLOR_RGB[obj.color], dtype=np.float64) / 255.0
        col = np.clip(shade[:, :, None] * rgb[None, None, :], 0.0, 1.0)
        img[win] = np.where(mask[:, :, None], col, img[win])
    if supersample > 1:
        img = img.reshape(image_size, supersample, image_size, supersample, 3).mean(axis=(1, 3))
    return np.round(img * 255.0).astype(np.uint8)


def render_scenes(scenes: list[Scene], image_size: int = DEFAULT_SIZE) -> np.ndarray:
    """Render many scenes -> uint8 (N, image_size, image_size, 3)."""
    out = np.empty((len(scenes), image_size, image_size, 3), dtype=np.uint8)
    for i, sc in enumerate(scenes):
        out[i] = render_scene(sc, image_size)
    return out


def object_masks(scene: Scene, image_size: int = DEFAULT_SIZE) -> np.ndarray:
    """Per-object boolean masks at pixel-centre resolution -> (N_objects, H, W) bool."""
    c = (np.arange(image_size, dtype=np.float64) + 0.5) / image_size
    u, v = np.meshgrid(c, c)
    return np.stack([object_mask_and_shade(o, u, v)[0] for o in scene.objects]) if scene.objects else \
        np.zeros((0, image_size, image_size), dtype=bool)
