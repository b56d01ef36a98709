"""Scenes of the synthetic grounding benchmark: sampling (a background, a target object with one event, distractors)
and rendering them to RGB frames. Used by `make_synthetic.py`, which writes the videos and annotations.

A scene is a small canvas (112x112 px by default) with a plain, gradient or checkered dark background and 3-5 flat
coloured shapes (circle, square, triangle, diamond; 7 saturated colours) about a quarter of the canvas wide. One
object, the target, has one event in a window [s, e]; the query names its colour, shape and the event:

- `appear`: visible only during the window; `disappear`: hidden only during the window.
- `move`: slides left/right/up/down during the window (still before and after it).
- `recolor`: blends from its colour to another (far away in RGB) during the window.
- `grow` / `shrink`: its size changes by a factor 1.6 during the window.

Gradual events change the object on every frame of the window and on no other frame: frame k shows progress
clamp((k + 1 - k0) / (k1 - k0), 0, 1), with [k0, k1) the frames of the window. Shapes are anti-aliased (coverage
from a signed distance), so sub-pixel steps still change pixels. Distractors never share a (shape, colour) with
the target or with each other, at any time, so the query names exactly one object; about half of them share the
target's colour or shape, and each may have an event of its own (often the target's type) in another random
window, so a model has to match the attributes, not just find the one thing that changes. Footprints (every place
an object ever covers) never overlap.

Window and duration boundaries lie on a grid that is a whole number of frames and of 0.1 s (0.5 s at 4 fps), so
the 1-decimal annotation times are exact frame boundaries.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# The synthetic benchmark's scenes, on which GroundVTS-tiny was trained: one object that appears or disappears, large
# enough for a 56-px, 1-block tower to see (with distractors the tiny base model has not learnt to ground yet:
# docs/synthetic_findings.md). `make-synthetic --preset groundvts-tiny` makes them too.
BENCHMARK_SCENES: dict[str, object] = dict(
    width=56, height=56, min_duration=8.0, max_duration=12.0, event_types=("appear", "disappear"),
    min_distractors=0, max_distractors=0, distractor_event_prob=0.0, shape_size=17.0,
)


SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 100, 240),
    "yellow": (240, 220, 40),
    "purple": (160, 60, 210),
    "orange": (250, 140, 20),
    "cyan": (40, 210, 220),
}
EVENT_TYPES: tuple[str, ...] = ("appear", "disappear", "move", "recolor", "grow", "shrink")
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
GRADUAL_EVENTS = frozenset({"move", "recolor", "grow", "shrink"})

SIZE_FACTOR = 1.6  # grow / shrink: end size / start size
MIN_RECOLOR_DISTANCE = 150.0  # RGB distance between a recolor's two colours
MOVE_DISTANCE = (0.3, 0.5)  # fraction of the canvas side travelled by a move
SIZE_JITTER = 0.15  # base sizes vary by +-15 % around the shape size
AA_PAD = 1.0  # anti-aliased edge beyond the shape's nominal box
GAP = 3.0  # free pixels between the footprints of two objects
PLACEMENT_TRIES = 200
LAYOUT_TRIES = 5

# Query phrasings; `{obj}` is "<colour> <shape>".
QUERY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "appear": ("the {obj} appears.", "a {obj} shows up.", "the {obj} becomes visible."),
    "disappear": (
        "the {obj} disappears for a while.", "the {obj} is briefly hidden.", "the {obj} vanishes and comes back."
    ),
    "move": ("the {obj} moves {direction}.", "the {obj} slides {direction}.", "the {obj} travels {direction}."),
    "recolor": (
        "the {obj} turns {new_color}.", "the {obj} changes color to {new_color}.", "the {obj} becomes {new_color}."
    ),
    "grow": ("the {obj} grows.", "the {obj} gets bigger.", "the {obj} grows larger."),
    "shrink": ("the {obj} shrinks.", "the {obj} gets smaller.", "the {obj} becomes smaller."),
}
DIRECTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("to the left", "left"),
    "right": ("to the right", "right"),
    "up": ("up", "upward"),
    "down": ("down", "downward"),
}


@dataclass(frozen=True)
class SceneConfig:
    """What every scene of a benchmark shares. `validate()` raises ValueError naming the bad field."""

    width: int = 112
    height: int = 112
    fps: Fraction = Fraction(4)
    min_duration: float = 8.0
    max_duration: float = 20.0
    min_window_ratio: float = 0.15
    max_window_ratio: float = 0.6
    event_types: tuple[str, ...] = EVENT_TYPES
    min_distractors: int = 2
    max_distractors: int = 4
    distractor_event_prob: float = 0.5
    shape_size: float | None = None  # base object size in px (default: 22 % of the shorter side)

    @property
    def grid(self) -> Fraction:
        """Seconds between possible window/duration boundaries: whole frames and whole tenths of a second."""
        frame, tenth = 1 / self.fps, Fraction(1, 10)
        return Fraction(math.lcm(frame.numerator, tenth.numerator), math.gcd(frame.denominator, tenth.denominator))

    @property
    def base_size(self) -> float:
        return float(self.shape_size) if self.shape_size is not None else round(0.22 * min(self.width, self.height))

    def validate(self) -> SceneConfig:
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise ValueError(f"size must be even and at least 32x32 px, got {self.width}x{self.height}.")
        if not 0 < self.fps <= 60:
            raise ValueError(f"fps must be in (0, 60], got {float(self.fps)}.")
        if not 0 < self.min_duration <= self.max_duration:
            raise ValueError(
                f"Need 0 < min_duration <= max_duration, got {self.min_duration} and {self.max_duration}."
            )
        if math.floor(Fraction(self.max_duration) / self.grid) < math.ceil(Fraction(self.min_duration) / self.grid):
            raise ValueError(
                f"No duration in [{self.min_duration}, {self.max_duration}] s is a multiple of {float(self.grid)} s"
                f" (whole frames at {float(self.fps)} fps and whole tenths of a second); widen the range."
            )
        if Fraction(self.min_duration) < 4 * self.grid:
            raise ValueError(
                f"min_duration {self.min_duration} s is too short: need at least 4 x {float(self.grid)} s at"
                f" {float(self.fps)} fps (a window with frames before and after it)."
            )
        if self.max_duration > 600:
            raise ValueError(f"max_duration {self.max_duration} s is too long for a synthetic video (max 600).")
        if not 0 < self.min_window_ratio <= self.max_window_ratio < 1:
            raise ValueError(
                "Need 0 < min_window_ratio <= max_window_ratio < 1 (a window never covers the whole video), got"
                f" {self.min_window_ratio} and {self.max_window_ratio}."
            )
        if self.min_duration * self.min_window_ratio < 2 / self.fps:
            raise ValueError(
                f"The shortest window ({self.min_window_ratio} x {self.min_duration} s) must last at least 2 frames"
                f" at {float(self.fps)} fps; raise min_duration, min_window_ratio or fps."
            )
        unknown = [event for event in self.event_types if event not in EVENT_TYPES]
        if unknown or not self.event_types:
            raise ValueError(f"event_types must be a non-empty subset of {EVENT_TYPES}, got {list(self.event_types)}.")
        if not 0 <= self.min_distractors <= self.max_distractors <= 6:
            raise ValueError(
                "Need 0 <= min_distractors <= max_distractors <= 6, got"
                f" {self.min_distractors} and {self.max_distractors}."
            )
        if not 0 <= self.distractor_event_prob <= 1:
            raise ValueError(f"distractor_event_prob must be in [0, 1], got {self.distractor_event_prob}.")
        if not 8 <= self.base_size * SIZE_FACTOR <= 0.5 * min(self.width, self.height):
            raise ValueError(
                f"shape_size {self.base_size} px does not fit: need 8 <= {SIZE_FACTOR} x size <= half the shorter side"
                f" ({min(self.width, self.height) // 2} px)."
            )
        return self


@dataclass
class SceneObject:
    """One shape; `event` is None for a static distractor. Sizes are bounding-box sides in px, centres in px."""

    shape: str
    color: str
    size: float
    center: tuple[float, float]
    event: str | None = None
    frames: tuple[int, int] | None = None  # [k0, k1): frames of the event window
    window: tuple[float, float] | None = None  # the same in seconds
    end_center: tuple[float, float] | None = None  # move
    direction: str | None = None  # move
    end_size: float | None = None  # grow / shrink
    new_color: str | None = None  # recolor
    footprint: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, y0, x1, y1 over the whole video

    def progress(self, k: int) -> float:
        k0, k1 = self.frames
        return min(max((k + 1 - k0) / (k1 - k0), 0.0), 1.0)

    def state(self, k: int) -> tuple[bool, float, float, float, tuple[float, float, float]]:
        """(visible, cx, cy, size, rgb) on frame k."""
        (cx, cy), size, rgb = self.center, self.size, tuple(float(c) for c in COLORS[self.color])
        if self.event is None:
            return True, cx, cy, size, rgb
        k0, k1 = self.frames
        inside = k0 <= k < k1
        if self.event == "appear":
            return inside, cx, cy, size, rgb
        if self.event == "disappear":
            return not inside, cx, cy, size, rgb
        p = self.progress(k)
        if self.event == "move":
            (ex, ey) = self.end_center
            return True, cx + (ex - cx) * p, cy + (ey - cy) * p, size, rgb
        if self.event in ("grow", "shrink"):
            return True, cx, cy, size + (self.end_size - size) * p, rgb
        new = COLORS[self.new_color]
        return True, cx, cy, size, tuple(a + (b - a) * p for a, b in zip(rgb, new))

    def describe(self) -> dict:
        """JSON-ready fields for the manifest."""
        keys = (
            "shape", "color", "size", "center", "event", "window", "end_center", "direction", "end_size", "new_color"
        )
        out = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        out["footprint"] = self.footprint
        return out


@dataclass
class Scene:
    num_frames: int
    duration: Fraction
    width: int
    height: int
    background: dict
    objects: list[SceneObject] = field(default_factory=list)  # objects[0] is the target
    query: str = ""

    @property
    def target(self) -> SceneObject:
        return self.objects[0]


def _color_distance(a: str, b: str) -> float:
    return math.dist(COLORS[a], COLORS[b])


def _window(rng: random.Random, total_units: int, config: SceneConfig, interior: bool) -> tuple[int, int]:
    """(start, end) in grid units: length 15-60 % (by default) of the video, anywhere inside it.

    `interior` (appear / disappear) keeps both ends strictly inside the video: an object hidden from the first
    frame would look like one that appears, so both changes must be seen.
    """
    margin = 1 if interior else 0
    min_frames_units = math.ceil(Fraction(2) / (config.grid * config.fps))
    low = max(math.ceil(config.min_window_ratio * total_units), min_frames_units, 1)
    high = max(math.floor(config.max_window_ratio * total_units), low)
    high = min(high, total_units - 1 - margin)  # never the whole video: there must be a before or an after
    length = rng.randint(min(low, high), high)
    start = rng.randint(margin, total_units - length - margin)
    return start, start + length


def _sizes(rng: random.Random, event: str | None, config: SceneConfig) -> tuple[float, float]:
    base = round(config.base_size * rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER), 2)
    big = round(base * SIZE_FACTOR, 2)
    if event == "grow":
        return base, big
    if event == "shrink":
        return big, base
    return base, base


def _place(
    rng: random.Random, obj: SceneObject, placed: Sequence[SceneObject], config: SceneConfig
) -> bool:
    """Pick a centre (and a move's end) so the footprint fits the canvas and keeps clear of `placed`."""
    big = max(obj.size, obj.end_size or obj.size)
    half = big / 2 + AA_PAD
    for _ in range(PLACEMENT_TRIES):
        mx = my = 0.0
        if obj.event == "move":
            ux, uy = DIRECTIONS[obj.direction]
            side = config.width if ux else config.height
            distance = round(rng.uniform(*MOVE_DISTANCE) * side, 2)
            mx, my = ux * distance, uy * distance
        x_lo, x_hi = half - min(mx, 0), config.width - half - max(mx, 0)
        y_lo, y_hi = half - min(my, 0), config.height - half - max(my, 0)
        if x_lo > x_hi or y_lo > y_hi:
            continue
        cx, cy = round(rng.uniform(x_lo, x_hi), 2), round(rng.uniform(y_lo, y_hi), 2)
        box = (min(cx, cx + mx) - half, min(cy, cy + my) - half, max(cx, cx + mx) + half, max(cy, cy + my) + half)
        box = tuple(round(v, 2) for v in box)
        if all(_apart(box, other.footprint) for other in placed):
            obj.center, obj.footprint = (cx, cy), box
            if obj.event == "move":
                obj.end_center = (round(cx + mx, 2), round(cy + my, 2))
            return True
    return False


def _apart(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    gap = GAP - 1e-6  # footprints are rounded to 0.01 px: compare without float noise
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _set_event(
    rng: random.Random, obj: SceneObject, event: str, total_units: int, config: SceneConfig, taken: set
) -> bool:
    """Give `obj` the event (window, direction, colours, sizes); False when no recolour keeps names unique."""
    if event == "recolor":
        choices = [
            c for c in COLORS
            if _color_distance(obj.color, c) >= MIN_RECOLOR_DISTANCE and (obj.shape, c) not in taken
        ]
        if not choices:
            return False
        obj.new_color = rng.choice(choices)
    start, end = _window(rng, total_units, config, event in ("appear", "disappear"))
    per_frame = config.grid * config.fps
    obj.event = event
    obj.frames = (int(start * per_frame), int(end * per_frame))
    obj.window = (float(start * config.grid), float(end * config.grid))
    if event == "move":
        obj.direction = rng.choice(sorted(DIRECTIONS))
    obj.size, end_size = _sizes(rng, event, config)
    if event in ("grow", "shrink"):
        obj.end_size = end_size
    return True


def _names(obj: SceneObject) -> set[tuple[str, str]]:
    """Every (shape, colour) the object ever shows."""
    return {(obj.shape, obj.color)} | ({(obj.shape, obj.new_color)} if obj.new_color else set())


def _distractor_identity(rng: random.Random, target: SceneObject, taken: set) -> tuple[str, str] | None:
    """A free (shape, colour); half of the time it shares the target's colour or shape (a hard negative)."""
    free = [(s, c) for s in SHAPES for c in COLORS if (s, c) not in taken]
    hard = [(s, c) for s, c in free if s == target.shape or c == target.color]
    pool = hard if hard and rng.random() < 0.5 else free
    return rng.choice(pool) if pool else None


def _background(rng: random.Random, config: SceneConfig) -> dict:
    level = rng.randint(28, 64)
    tint = [rng.randint(-8, 8) for _ in range(3)]
    style = rng.choice(("plain", "gradient", "checker"))
    spec = {"style": style, "rgb": [level + t for t in tint]}
    if style == "gradient":
        spec.update(axis=rng.choice(("x", "y")), amplitude=rng.randint(6, 14))
    elif style == "checker":
        spec.update(cell=rng.choice((8, 14, 16)), amplitude=rng.randint(3, 7))
    return spec


def background_image(spec: dict, width: int, height: int) -> np.ndarray:
    """(height, width, 3) float64 background of a scene."""
    image = np.empty((height, width, 3), dtype=np.float64)
    image[:] = spec["rgb"]
    if spec["style"] == "gradient":
        ramp = np.linspace(-1.0, 1.0, width if spec["axis"] == "x" else height) * spec["amplitude"]
        image += ramp[None, :, None] if spec["axis"] == "x" else ramp[:, None, None]
    elif spec["style"] == "checker":
        ys, xs = np.indices((height, width)) // spec["cell"]
        image += (((ys + xs) % 2) * 2 - 1)[:, :, None] * spec["amplitude"]
    return image


def query_for(rng: random.Random, obj: SceneObject) -> str:
    template = rng.choice(QUERY_TEMPLATES[obj.event])
    direction = rng.choice(DIRECTION_PHRASES[obj.direction]) if obj.direction else ""
    return template.format(obj=f"{obj.color} {obj.shape}", direction=direction, new_color=obj.new_color or "")


def query_vocabulary() -> list[str]:
    """Every query phrasing with every colour, shape, direction and new colour: the text a tokenizer for this
    benchmark needs to know."""
    directions = [phrase for phrases in DIRECTION_PHRASES.values() for phrase in phrases]
    texts = []
    for event, templates in QUERY_TEMPLATES.items():
        for template, color, shape in itertools.product(templates, COLORS, SHAPES):
            for direction in directions if event == "move" else [""]:
                for new_color in COLORS if event == "recolor" else [""]:
                    texts.append(template.format(obj=f"{color} {shape}", direction=direction, new_color=new_color))
    return texts


def _distractors(
    rng: random.Random, target: SceneObject, wanted: int, total_units: int, config: SceneConfig
) -> list[SceneObject]:
    """Up to `wanted` placed distractors whose names differ from the target's and from each other's."""
    placed, taken = [target], _names(target)
    for _ in range(4 * wanted):  # the canvas may refuse some candidates: draw new ones
        if len(placed) > wanted:
            break
        identity = _distractor_identity(rng, target, taken)
        if identity is None:
            break
        obj = SceneObject(shape=identity[0], color=identity[1], size=0.0, center=(0.0, 0.0))
        has_event = rng.random() < config.distractor_event_prob
        if has_event:
            kind = target.event if rng.random() < 0.5 else rng.choice(config.event_types)
            has_event = _set_event(rng, obj, kind, total_units, config, taken | {identity})
        if not has_event:
            obj.size = _sizes(rng, None, config)[0]
        if not _place(rng, obj, placed, config):
            if not has_event:
                continue
            obj = SceneObject(shape=obj.shape, color=obj.color, size=_sizes(rng, None, config)[0], center=(0, 0))
            if not _place(rng, obj, placed, config):  # no room for its event: try it static
                continue
        placed.append(obj)
        taken |= _names(obj)
    return placed[1:]


def sample_scene(rng: random.Random, config: SceneConfig, event: str | None = None) -> Scene:
    """One random scene whose target has `event` (default: drawn from `config.event_types`).

    The same `rng` state (and event) gives the same scene.
    """
    grid = config.grid
    total_units = rng.randint(
        math.ceil(Fraction(config.min_duration) / grid), math.floor(Fraction(config.max_duration) / grid)
    )
    duration = total_units * grid
    scene = Scene(
        num_frames=int(duration * config.fps), duration=duration, width=config.width, height=config.height,
        background=_background(rng, config),
    )
    # The target: recolor needs a far colour, so draw until the event fits (every colour has one).
    event = event or rng.choice(config.event_types)
    target = SceneObject(shape=rng.choice(SHAPES), color=rng.choice(sorted(COLORS)), size=0.0, center=(0.0, 0.0))
    while not _set_event(rng, target, event, total_units, config, set()):
        target.color = rng.choice(sorted(COLORS))
    wanted = rng.randint(config.min_distractors, config.max_distractors)
    for _ in range(LAYOUT_TRIES):  # a crowded layout may leave no room for enough distractors: lay out again
        if not _place(rng, target, [], config):
            raise RuntimeError(f"Could not place the target on a {config.width}x{config.height} canvas.")
        scene.objects = [target, *_distractors(rng, target, wanted, total_units, config)]
        if len(scene.objects) > config.min_distractors:
            break
    scene.query = query_for(rng, target)
    return scene


def _signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, half: float) -> np.ndarray:
    """Signed distance (px, negative inside) from pixel centres to the shape's edge."""
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - half
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.9 * half  # 0.9: about the area of the circle
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - half) / math.sqrt(2)
    # triangle, apex up: the bottom edge and the two slanted edges (normals (-+2, -1) / sqrt 5)
    slant = (2 * np.abs(dx) - (dy + half)) / math.sqrt(5)
    return np.maximum(dy - half, slant)


def coverage(shape: str, cx: float, cy: float, size: float, width: int, height: int):
    """(y0, y1, x0, x1, alpha): anti-aliased coverage of the shape on its box of the canvas."""
    half = size / 2
    x0, x1 = max(math.floor(cx - half - AA_PAD), 0), min(math.ceil(cx + half + AA_PAD), width)
    y0, y1 = max(math.floor(cy - half - AA_PAD), 0), min(math.ceil(cy + half + AA_PAD), height)
    dx = (np.arange(x0, x1) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1) + 0.5 - cy)[:, None]
    alpha = np.clip(0.5 - _signed_distance(shape, dx, dy, half), 0.0, 1.0)
    return y0, y1, x0, x1, alpha


def render_frames(scene: Scene) -> Iterator[np.ndarray]:
    """The scene's frames as (height, width, 3) uint8 RGB arrays."""
    background = background_image(scene.background, scene.width, scene.height)
    cache: dict[tuple, tuple] = {}
    previous_key, previous_frame = None, None
    for k in range(scene.num_frames):
        states = [obj.state(k) for obj in scene.objects]
        key = tuple(states)
        if key == previous_key:  # nothing changed: same pixels
            yield previous_frame
            continue
        frame = background.copy()
        for obj, (visible, cx, cy, size, rgb) in zip(scene.objects, states):
            if not visible:
                continue
            shape_key = (obj.shape, cx, cy, size)
            if shape_key not in cache:
                cache[shape_key] = coverage(obj.shape, cx, cy, size, scene.width, scene.height)
            y0, y1, x0, x1, alpha = cache[shape_key]
            region = frame[y0:y1, x0:x1]
            region += alpha[:, :, None] * (np.asarray(rgb) - region)
        previous_key, previous_frame = key, np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        yield previous_frame
