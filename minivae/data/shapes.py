"""A procedurally generated shapes data set with known factors, in the spirit of dSprites.

Every image shows one white shape on a black background. Five factors of variation produce it:

    factor     values (default grid)
    shape      0 square, 1 ellipse, 2 triangle, 3 heart
    scale      4 values from 0.55 to 1.0 (the shape spans up to scale * 0.25 of the width each side)
    rotation   6 angles in [0, pi/2) (radians)
    x, y       10 positions each, centre of the shape in [0.3, 0.7] of the width/height

Every shape stays inside the frame; 20 x 20 pixels (the default) train in seconds on a CPU.

    data = make_shapes(10_000, seed=0)          # 20 x 20 images by default (size=...)
    data.x        (n, size * size) float32 in {0, 1}, rows of the flattened image (row-major)
    data.factors  (n, 5) int64, the index of each factor's value in its grid
    data.values   (n, 5) float64, the values themselves (shape id, scale, angle, x, y)

Nothing is downloaded: the images are rasterised with NumPy, all images of a batch at once, by
testing every pixel centre against the shape's inequality in the shape's own frame,

    u = R(-angle) (p - centre) / (0.25 * scale),     p, centre in [0, 1]^2,

where p is the pixel centre; square |u|_inf <= 0.8, ellipse u_1^2 + (u_2 / 0.55)^2 <= 1,
triangle three half-planes, heart (a^2 + b^2 - 1)^3 - a^2 b^3 <= 0 with (a, b) a scaled u.
The same seed gives the same images and factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_positive_int

#: The factors in the column order of ``ShapesData.factors`` and ``ShapesData.values``.
FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "rotation", "x", "y")
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "triangle", "heart")


def factor_grids(
    n_scales: int = 4, n_rotations: int = 6, n_positions: int = 10
) -> dict[str, np.ndarray]:
    """The values each factor takes: name -> 1-D float64 array (the grid indexed by ``factors``)."""
    return {
        "shape": np.arange(len(SHAPE_NAMES), dtype=np.float64),
        "scale": np.linspace(0.55, 1.0, check_positive_int(n_scales, "n_scales")),
        "rotation": np.linspace(0.0, np.pi / 2, check_positive_int(n_rotations, "n_rotations"),
                                endpoint=False),
        "x": np.linspace(0.3, 0.7, check_positive_int(n_positions, "n_positions")),
        "y": np.linspace(0.3, 0.7, n_positions),
    }


@dataclass
class ShapesData:
    """Images and their ground-truth factors.

    x: (n, size * size) float32 in {0, 1};  factors: (n, 5) int64 grid indices;
    values: (n, 5) float64 factor values; columns ordered as :data:`FACTOR_NAMES`.
    """

    x: np.ndarray
    factors: np.ndarray
    values: np.ndarray
    size: int
    grids: dict[str, np.ndarray]

    @property
    def factor_names(self) -> tuple[str, ...]:
        return FACTOR_NAMES

    @property
    def n_values(self) -> tuple[int, ...]:
        """How many values each factor takes, e.g. (4, 4, 6, 10, 10)."""
        return tuple(len(self.grids[name]) for name in FACTOR_NAMES)

    def images(self) -> np.ndarray:
        """x reshaped to (n, size, size) for plotting."""
        return self.x.reshape(-1, self.size, self.size)

    def __len__(self) -> int:
        return self.x.shape[0]


def _inside(shape_id: int, u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Boolean mask: is the point (u1, u2), in the shape's unit frame, inside the shape?

    u1, u2: (n, H, W) for n images of the same shape. Every shape fits in |u|_inf <= 1.
    """
    if shape_id == 0:
        return np.maximum(np.abs(u1), np.abs(u2)) <= 0.8
    if shape_id == 1:
        return u1 * u1 + (u2 / 0.55) ** 2 <= 1.0
    if shape_id == 2:  # an isosceles triangle, apex up on screen (u2 grows downward)
        return (u2 <= 0.75) & (1.7 * np.abs(u1) <= 0.95 * (u2 + 0.95))
    # the implicit heart (a^2 + b^2 - 1)^3 - a^2 b^3 <= 0, scaled into the unit square
    a, b = u1 * 1.25, -u2 * 1.25 + 0.15
    return (a * a + b * b - 1.0) ** 3 - a * a * b**3 <= 0.0


def render(values: np.ndarray, size: int = 20) -> np.ndarray:
    """Rasterise shapes from factor values (n, 5) -> images (n, size, size) float32 in {0, 1}.

    values columns: shape id (0..3), scale (>0), rotation (radians), x, y (centre, as a fraction
    of the image width/height; y grows downward).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(FACTOR_NAMES):
        raise ValueError(
            f"values must be (n, {len(FACTOR_NAMES)}) with columns {FACTOR_NAMES}, "
            f"got shape {values.shape}"
        )
    size = check_positive_int(size, "size")
    shape_ids = values[:, 0].round().astype(np.int64)
    if shape_ids.size and (shape_ids.min() < 0 or shape_ids.max() >= len(SHAPE_NAMES)):
        raise ValueError(f"shape ids must be in 0..{len(SHAPE_NAMES) - 1}, got {shape_ids}")
    coords = ((np.arange(size) + 0.5) / size).astype(np.float32)  # pixel centres in [0, 1]
    py, px = coords[None, :, None], coords[None, None, :]  # (1, H, 1), (1, 1, W)
    images = np.zeros((values.shape[0], size, size), dtype=np.float32)
    for shape_id in range(len(SHAPE_NAMES)):
        rows = np.flatnonzero(shape_ids == shape_id)
        if rows.size == 0:
            continue
        v = values[rows].astype(np.float32)
        half = (v[:, 1] * 0.25)[:, None, None]
        cos, sin = np.cos(v[:, 2])[:, None, None], np.sin(v[:, 2])[:, None, None]
        dx, dy = px - v[:, 3, None, None], py - v[:, 4, None, None]
        u1 = (cos * dx + sin * dy) / half  # rotate the pixel by -angle into the shape's frame
        u2 = (-sin * dx + cos * dy) / half
        images[rows] = _inside(shape_id, u1, u2)
    return images


def make_shapes(
    n: int,
    seed: int | None = 0,
    size: int = 20,
    n_scales: int = 4,
    n_rotations: int = 6,
    n_positions: int = 10,
) -> ShapesData:
    """n images with factors drawn independently and uniformly from their grids.

    Returns a :class:`ShapesData` with x (n, size * size) float32, factors (n, 5) int64 and
    values (n, 5) float64. The same ``seed`` gives the same data.
    """
    n = check_positive_int(n, "n")
    grids = factor_grids(n_scales, n_rotations, n_positions)
    rng = np.random.default_rng(seed)
    factors = np.stack(
        [rng.integers(0, len(grids[name]), size=n) for name in FACTOR_NAMES], axis=1
    ).astype(np.int64)
    values = np.stack(
        [grids[name][factors[:, j]] for j, name in enumerate(FACTOR_NAMES)], axis=1
    )
    images = render(values, size)
    return ShapesData(images.reshape(n, size * size), factors, values, size, grids)


def traverse_factor(
    base_values: np.ndarray, factor: str | int, grid: np.ndarray, size: int = 20
) -> np.ndarray:
    """Images of one shape with one factor swept over ``grid``: (len(grid), size, size).

    base_values: (5,) the other factors' values; factor: a name from FACTOR_NAMES or its column.
    """
    j = FACTOR_NAMES.index(factor) if isinstance(factor, str) else int(factor)
    values = np.repeat(np.asarray(base_values, dtype=np.float64)[None, :], len(grid), axis=0)
    values[:, j] = grid
    return render(values, size)
