"""Picking by ray casting: the ray through a mouse position and the first sphere it hits.

Uses the inverse of the same projection x view matrix that pyqtgraph draws with,
so what is picked is what is under the mouse; plain numpy, O(N) per pick.
"""

from __future__ import annotations

import numpy as np


def qmatrix_to_numpy(matrix) -> np.ndarray:
    """A QMatrix4x4 as a row-major (4, 4) numpy array (Qt stores it column-major)."""
    return np.array(matrix.data(), dtype=float).reshape(4, 4).T


def camera_ray(mvp: np.ndarray, x: float, y: float, width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Ray from the camera through widget pixel (x, y), in world coordinates.

    Args:
        mvp: (4, 4) projection × view matrix (row-major).
        x, y: mouse position in widget (logical) pixels, y downwards.
        width, height: widget size in logical pixels (the viewport the projection uses).

    Returns:
        (origin on the near plane, unit direction).
    """
    ndc_x = 2.0 * x / width - 1.0
    ndc_y = 1.0 - 2.0 * y / height
    inverse = np.linalg.inv(mvp)
    near = inverse @ np.array([ndc_x, ndc_y, -1.0, 1.0])
    far = inverse @ np.array([ndc_x, ndc_y, 1.0, 1.0])
    near, far = near[:3] / near[3], far[:3] / far[3]
    direction = far - near
    return near, direction / np.linalg.norm(direction)


def project_points(mvp: np.ndarray, points: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N, 2) widget pixel positions of world points (inverse of :func:`camera_ray`)."""
    points = np.atleast_2d(points)
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ mvp.T
    ndc = homogeneous[:, :3] / homogeneous[:, 3:4]
    return np.column_stack([(ndc[:, 0] + 1.0) * width / 2.0, (1.0 - ndc[:, 1]) * height / 2.0])


def ray_pick(origin: np.ndarray, direction: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> int | None:
    """Index of the sphere the ray hits first (nearest entry point in front of the origin), or None."""
    if len(centers) == 0:
        return None
    oc = np.asarray(centers, dtype=float) - origin
    along = oc @ direction
    miss2 = np.einsum("ij,ij->i", oc, oc) - along ** 2
    r2 = np.asarray(radii, dtype=float) ** 2
    hit = miss2 <= r2
    if not np.any(hit):
        return None
    t = np.full(len(centers), np.inf)
    depth = along[hit] - np.sqrt(np.maximum(r2[hit] - miss2[hit], 0.0))
    t[hit] = np.where(depth >= 0, depth, np.where(along[hit] >= 0, 0.0, np.inf))
    best = int(np.argmin(t))
    return best if np.isfinite(t[best]) else None
