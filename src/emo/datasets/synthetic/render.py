"""Vectorised numpy rendering of a synthetic head, one frame per call.

The head is an ellipsoid seen in orthographic projection. For every pixel the
renderer intersects the view ray with the rotated ellipsoid and maps the pixel
back to the head's own surface coordinates ``(x, y, z)``; eyes, brows, nose,
mouth, hair line and glasses are shapes in those coordinates, so turning the
head foreshortens and hides them correctly. Edges are anti-aliased through
signed distances, never by supersampling. Hair volume, ears, hat, neck and
torso are 2-D shapes anchored at projected 3-D points.
"""

from __future__ import annotations

import math

import numpy as np

from emo.datasets.synthetic.identity import Color, Identity

__all__ = ["MOUTH_MAX_GAP", "HeadRenderer"]

MOUTH_MAX_GAP = 0.4  # inner-lip gap at opening 1, in head units (half the head height is 1)
_HEAD_CENTRE = (0.0, 0.1)  # frame units: x right, y up, the frame spans [-1, 1]
_DARK = np.array([0.1, 0.06, 0.06])
_MOUTH_INSIDE = np.array([0.16, 0.02, 0.05])
_TEETH = np.array([0.94, 0.93, 0.88])
_WHITE = np.array([0.96, 0.96, 0.94])
_NOSE_HEIGHT = 0.2  # how far the nose tip stands out of the head ellipsoid, head units

Array = np.ndarray


def _cover(distance: Array, pixel: float) -> Array:
    """Anti-aliased coverage of a signed distance (negative inside)."""
    out: Array = np.clip(0.5 - distance / pixel, 0.0, 1.0)
    return out


def _ellipse(
    x: Array, y: Array, cx: float, cy: float, rx: float | Array, ry: float | Array
) -> Array:
    """Signed distance to an axis-aligned ellipse, to first order (``f / |grad f|``).

    Exact on the outline, so anti-aliasing stays one pixel wide even for very thin
    ellipses; away from it, the distance to the bounding box keeps thin ellipses thin.
    """
    ex, ey = (x - cx) / rx, (y - cy) / ry
    grad = 2.0 * np.sqrt((ex / rx) ** 2 + (ey / ry) ** 2) + 1e-6
    box = np.maximum(np.abs(x - cx) - rx, np.abs(y - cy) - ry)
    out: Array = np.maximum((ex * ex + ey * ey - 1.0) / grad, box)
    return out


def _segment(x: Array, y: Array, a: tuple[float, float], b: tuple[float, float]) -> Array:
    """Distance to the segment from ``a`` to ``b``."""
    ex, ey = b[0] - a[0], b[1] - a[1]
    t = np.clip(((x - a[0]) * ex + (y - a[1]) * ey) / max(ex * ex + ey * ey, 1e-9), 0.0, 1.0)
    out: Array = np.hypot(x - a[0] - t * ex, y - a[1] - t * ey)
    return out


def _paint(canvas: Array, alpha: Array, color: Array | Color) -> None:
    """Blend ``color`` (``(3,)`` or ``(h, w, 3)``) over ``canvas`` in place."""
    canvas += alpha[..., None] * (np.asarray(color, dtype=np.float32) - canvas)


def _rotation(yaw: float, pitch: float) -> Array:
    """Head -> view rotation: yaw about y (nose to +x), then pitch about x (nose up)."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    out: Array = rx @ ry
    return out


class HeadRenderer:
    """Draws one identity at any pose, mouth shape and eyelid closure.

    Parameters
    ----------
    identity
        The head to draw.
    size
        Output height and width in pixels.
    """

    def __init__(self, identity: Identity, size: int) -> None:
        self.identity = identity
        self.size = size
        coords = (np.arange(size) + 0.5) / size * 2.0 - 1.0
        coords = coords.astype(np.float32)
        self.x = np.ascontiguousarray(np.broadcast_to(coords[None, :], (size, size)))
        self.y = np.ascontiguousarray(np.broadcast_to(-coords[:, None], (size, size)))
        rng = np.random.default_rng([identity.texture_seed, 1])
        # Painted style: low-frequency brightness waves, on the head surface and on the backdrop.
        self._waves = rng.uniform(-1, 1, (6, 4)) * np.array([9.0, 9.0, np.pi, 0.05])
        self.background = self._background()

    def _texture(self, x: Array, y: Array) -> Array:
        out = np.zeros_like(x)
        for fx, fy, phase, amp in self._waves:
            out += amp * np.sin(fx * x + fy * y + phase)
        return out

    def _background(self) -> Array:
        ident = self.identity
        top, bottom = (np.array(c) for c in ident.background_colors)
        t = ((1.0 - self.y) / 2.0)[..., None]
        canvas = top * (1 - t) + bottom * t
        pattern = np.zeros((self.size, self.size))
        if ident.background == "stripes":
            pattern = (np.sin((self.x + 0.5 * self.y) * 14.0) > 0.3).astype(np.float64)
        elif ident.background == "dots":
            pattern = _cover(
                np.hypot((self.x * 4 % 1) - 0.5, (self.y * 4 % 1) - 0.5) - 0.18, 8.0 / self.size
            )
        elif ident.background == "checker":
            pattern = ((np.floor(self.x * 3) + np.floor(self.y * 3)) % 2).astype(np.float64)
        _paint(canvas, 0.18 * pattern, np.array(ident.background_colors[1]) * 0.7)
        if ident.style == "painted":
            canvas *= 1.0 + 1.5 * self._texture(self.x, self.y)[..., None]
        return np.asarray(canvas, dtype=np.float32)

    def _surface_z(self, x: float, y: float) -> float:
        """Depth of the head ellipsoid's front at ``(x, y)`` (head frame)."""
        ident = self.identity
        return ident.head_depth * math.sqrt(max(1.0 - (x / ident.head_width) ** 2 - y * y, 0.0))

    def face_box(self, pose: Array, offset: Array) -> Array:
        """``(4,)`` pixel box ``x0, y0, x1, y1`` around the head ellipse's silhouette."""
        normal = self._silhouette(pose)
        roll = math.radians(float(pose[2]))
        rot = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
        b = self.identity.head_scale
        inv = rot @ np.linalg.inv(normal) @ rot.T * b * b
        hx, hy = math.sqrt(inv[0, 0]), math.sqrt(inv[1, 1])
        cx, cy = _HEAD_CENTRE[0] + float(offset[0]), _HEAD_CENTRE[1] + float(offset[1])
        s = self.size / 2.0
        return np.array(
            [(cx - hx + 1) * s, (1 - cy - hy) * s, (cx + hx + 1) * s, (1 - cy + hy) * s]
        )

    def _quadric(self, pose: Array) -> tuple[Array, Array]:
        ident = self.identity
        rot = _rotation(math.radians(float(pose[0])), math.radians(float(pose[1])))
        diag = np.diag([1 / ident.head_width**2, 1.0, 1 / ident.head_depth**2])
        return rot, rot @ diag @ rot.T

    def _silhouette(self, pose: Array) -> Array:
        """2x2 matrix ``N`` with the head outline ``u^T N u = 1`` in rolled head units."""
        _, m = self._quadric(pose)
        a = m[2, 2]
        mv = m[:2, 2]
        return np.asarray((a * m[:2, :2] - np.outer(mv, mv)) / a)

    def render(
        self, pose: Array, offset: Array, mouth_open: float, mouth_width: float, blink: float
    ) -> Array:
        """Draw one frame.

        Parameters
        ----------
        pose
            ``(3,)`` yaw, pitch, roll in degrees.
        offset
            ``(2,)`` head-centre shift in frame half-widths (x right, y up).
        mouth_open, mouth_width
            Viseme in ``[0, 1]``: the inner-lip gap is ``mouth_open * MOUTH_MAX_GAP``.
        blink
            Eyelid closure, 0 open to 1 closed.

        Returns
        -------
        numpy.ndarray
            ``(size, size, 3)`` float32 RGB in ``[0, 1]``.
        """
        ident = self.identity
        b = ident.head_scale
        a_w = ident.head_width
        px = 2.0 / (self.size * b)  # one pixel in head units
        roll = math.radians(float(pose[2]))
        cx, cy = _HEAD_CENTRE[0] + float(offset[0]), _HEAD_CENTRE[1] + float(offset[1])
        frame: Array = self.background.copy()
        cr, sr = math.cos(roll), math.sin(roll)

        # Torso and neck: they translate with the head but do not turn.
        torso = _ellipse(self.x, self.y, cx * 0.6, cy - b * 1.9, b * 1.55, b * 0.85)
        clothes = np.array(ident.clothes) * (
            1.0 - 0.25 * np.clip(-self.y, 0, 1)[..., None] * (ident.style != "flat")
        )
        neck_d = np.maximum(np.abs(self.x - cx * 1.2) - b * 0.34 * a_w, self.y - cy + b * 0.4)
        _paint(frame, _cover(neck_d, 2.0 / self.size), np.array(ident.skin) * 0.78)
        _paint(frame, _cover(torso, 2.0 / self.size), clothes)

        # Everything else lies in a box around the head (hair, ears and hat included):
        # draw only there.
        corners = np.array(
            [[-1.45 * a_w, -1.6], [1.45 * a_w, -1.6], [-1.45 * a_w, 1.45], [1.45 * a_w, 1.45]]
        )
        img = corners @ np.array([[cr, sr], [-sr, cr]]) * b + np.array([cx, cy])
        half = self.size / 2.0
        c0 = int(np.clip(np.floor((img[:, 0].min() + 1) * half), 0, self.size))
        c1 = int(np.clip(np.ceil((img[:, 0].max() + 1) * half), 0, self.size))
        r0 = int(np.clip(np.floor((1 - img[:, 1].max()) * half), 0, self.size))
        r1 = int(np.clip(np.ceil((1 - img[:, 1].min()) * half), 0, self.size))
        if c1 <= c0 or r1 <= r0:
            return frame
        canvas = frame[r0:r1, c0:c1]
        dx, dy = self.x[r0:r1, c0:c1] - cx, self.y[r0:r1, c0:c1] - cy
        u = (cr * dx + sr * dy) / b
        v = (-sr * dx + cr * dy) / b
        rot, m = self._quadric(pose)
        shaded = ident.style != "flat"

        def project(point: tuple[float, float, float]) -> tuple[float, float]:
            p = rot @ np.array(point)
            return float(p[0]), float(p[1])

        # Hair volume behind the head.
        hair = np.array(ident.hair_color)
        if ident.hair_style != "bald":
            hx, hy = project((0.0, 0.1, -0.25))
            back = _ellipse(u, v, hx, hy + 0.05, a_w * 1.13, 1.08)
            if ident.hair_style == "long":
                side = np.maximum(np.abs(u - hx) - a_w * 1.12, np.maximum(v - 0.2, -1.45 - v))
                back = np.minimum(back, side)
            if ident.hair_style == "bun":
                bx, by = project((0.0, 1.05, -0.35))
                back = np.minimum(back, _ellipse(u, v, bx, by + 0.05, 0.3, 0.28))
            _paint(canvas, _cover(back, px), hair * 0.85)

        # Ears (and earrings), behind the head outline.
        for s in (-1.0, 1.0):
            ex, ey = project((s * a_w * 0.97, 0.0, -0.05))
            _paint(
                canvas, _cover(_ellipse(u, v, ex, ey, 0.1, 0.17), px), np.array(ident.skin) * 0.88
            )
            if ident.earrings is not None:
                ring = _ellipse(u, v, ex, ey - 0.24, 0.05, 0.05)
                _paint(canvas, _cover(ring, px), ident.earrings)

        # The head: ray-ellipsoid intersection per pixel.
        big_a = m[2, 2]
        big_b = m[0, 2] * u + m[1, 2] * v
        big_c = m[0, 0] * u * u + 2 * m[0, 1] * u * v + m[1, 1] * v * v - 1.0
        z = (-big_b + np.sqrt(np.maximum(big_b * big_b - big_a * big_c, 0.0))) / big_a
        n_mat = self._silhouette(pose)
        q = n_mat[0, 0] * u * u + 2 * n_mat[0, 1] * u * v + n_mat[1, 1] * v * v
        grad = 2 * np.hypot(n_mat[0, 0] * u + n_mat[0, 1] * v, n_mat[0, 1] * u + n_mat[1, 1] * v)
        head_d = (q - 1.0) / np.maximum(grad, 1e-6)
        head = _cover(head_d, px)
        # Surface coordinates in the head's own frame (x right, y up, z out of the face).
        sx = rot[0, 0] * u + rot[1, 0] * v + rot[2, 0] * z
        sy = rot[0, 1] * u + rot[1, 1] * v + rot[2, 1] * z
        sz = rot[0, 2] * u + rot[1, 2] * v + rot[2, 2] * z
        if shaded:
            nx = m[0, 0] * u + m[0, 1] * v + m[0, 2] * z
            ny = m[1, 0] * u + m[1, 1] * v + m[1, 2] * z
            nz = m[2, 0] * u + m[2, 1] * v + m[2, 2] * z
            lx, ly, lz = ident.light
            lambert = np.clip(
                (nx * lx + ny * ly + nz * lz) / np.sqrt(nx * nx + ny * ny + nz * nz + 1e-9), 0, 1
            )
            shade = (0.55 + 0.5 * lambert)[..., None]
        else:
            shade = np.ones((*u.shape, 1), dtype=np.float32)
        skin = np.array(ident.skin)
        _paint(canvas, head, skin * shade)
        if not shaded:
            _paint(canvas, _cover(np.abs(head_d) - 0.012, px) * (head_d > -0.05), _DARK)
        front = head * np.clip(sz / 0.08, 0.0, 1.0)

        def feature(distance: Array, color: Array | Color, opacity: float = 1.0) -> Array:
            alpha: Array = _cover(distance, px) * front * opacity
            _paint(canvas, alpha, np.asarray(color) * shade if shaded else color)
            return alpha

        if shaded:
            for s in (-1.0, 1.0):
                feature(_ellipse(sx, sy, s * 0.42, -0.2, 0.14, 0.09), (0.85, 0.4, 0.4), 0.18)

        # Hair on the head: above the hair line, and the back half above the ears.
        if ident.hair_style != "bald":
            if ident.hair_style == "fringe":
                line = 0.3 + 0.03 * np.sin(sx * 30.0)
            else:
                line = ident.hairline - ident.temple * (sx / a_w) ** 2
            cap = np.minimum(line - sy, np.maximum(sz - 0.25 * ident.head_depth, -0.15 - sy))
            _paint(canvas, _cover(cap, px) * head, hair * shade if shaded else hair)

        # Eyes, brows, glasses.
        ex, ey, ew = ident.eye_spacing, ident.eye_height, ident.eye_width
        lid = ident.eye_open * (1.0 - blink) + 0.004
        # Brows always darker than the skin: detectors look for that contrast.
        brow = np.minimum(hair * 0.7 if ident.hair_style != "bald" else 0.2, skin * 0.4)
        for s in (-1.0, 1.0):
            white = _ellipse(sx, sy, s * ex, ey, ew, lid)
            alpha = feature(white, _WHITE)
            iris = _ellipse(sx, sy, s * ex, ey, ident.eye_open * 0.95, ident.eye_open * 0.95)
            _paint(canvas, _cover(iris, px) * alpha, ident.iris)
            pupil = _ellipse(sx, sy, s * ex, ey, ident.eye_open * 0.45, ident.eye_open * 0.45)
            _paint(canvas, _cover(pupil, px) * alpha, (0.02, 0.02, 0.02))
            upper = np.abs(_ellipse(sx, sy, s * ex, ey, ew * 1.03, lid + 0.01)) - 0.014
            feature(np.maximum(upper, ey - 0.01 - sy), _DARK)
            tilt = ident.brow_tilt * s
            bx = sx - s * ex
            by = sy - (ey + ident.eye_open + 0.1) - tilt * bx
            feature(_ellipse(bx, by, 0.0, 0.0, ew * 1.15, ident.brow_thickness), brow)
            if ident.glasses is not None:
                ring = np.abs(_ellipse(sx, sy, s * ex, ey, ew * 1.45, ident.eye_open * 2.6)) - 0.018
                feature(ring, ident.glasses)
        if ident.glasses is not None:
            inner = ex - ew * 1.42
            bridge = np.maximum(np.abs(sy - ey - 0.03) - 0.015, np.abs(sx) - inner)
            feature(bridge, ident.glasses)

        # Nose: it stands out of the surface, so it is drawn at projected 3-D points and
        # shifts against the eyes as the head turns (what pose estimators rely on).
        tip_y = ident.mouth_y + 0.3
        bridge = project((0.0, ident.eye_height, self._surface_z(0.0, ident.eye_height)))
        tip = project((0.0, tip_y, self._surface_z(0.0, tip_y) + _NOSE_HEIGHT))
        away = -0.03 if ident.light[0] > 0 else 0.03
        ridge = _segment(u - away, v, bridge, tip) - 0.022
        _paint(canvas, _cover(ridge, px) * head * (0.55 if shaded else 0.35), skin * 0.72)
        _paint(canvas, _cover(_ellipse(u, v, *tip, 0.08, 0.055), px) * head * 0.7, skin * 0.8)
        for s in (-1.0, 1.0):
            wing = project(
                (s * 0.055, tip_y - 0.03, self._surface_z(0.0, tip_y) + 0.5 * _NOSE_HEIGHT)
            )
            _paint(canvas, _cover(_ellipse(u, v, *wing, 0.03, 0.018), px) * head, skin * 0.3)

        # Mouth: lips, dark inside, teeth, tongue. The gap is the ground truth; the jaw
        # drops, so the lower lip travels further than the upper one.
        full = mouth_open * MOUTH_MAX_GAP
        my = ident.mouth_y - 0.25 * full
        half_w = ident.mouth_width * (0.7 + 0.5 * mouth_width)
        gap = full / 2.0
        lip = ident.lip_thickness
        outer_ry = np.where(sy >= my, gap + lip, gap + lip * 1.3)
        feature(_ellipse(sx, sy, 0.0, my, half_w * 1.12, outer_ry), ident.lip_color)
        inside = _ellipse(sx, sy, 0.0, my, half_w, max(gap, 1e-3))
        seam = np.maximum(np.abs(sy - my) - 0.01, np.abs(sx) - half_w)
        feature(np.minimum(inside, seam), _MOUTH_INSIDE)

        if ident.hat is not None:
            hx, hy = project((0.0, 0.72, 0.0))
            brim = _ellipse(u, v, hx, hy, a_w * 1.2, 0.1)
            crown = np.maximum(_ellipse(u, v, hx, hy, a_w * 0.85, 0.55), hy - v)
            _paint(canvas, _cover(np.minimum(brim, crown), px), ident.hat)

        if ident.style == "painted":
            grain = 0.5 * self._texture(sx * 2.0, sy * 2.0) * head
            canvas *= 1.0 + grain[..., None]
        np.clip(frame, 0.0, 1.0, out=frame)
        return frame
