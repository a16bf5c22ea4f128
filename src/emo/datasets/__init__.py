"""Data sets: procedural talking heads with ground truth (:mod:`emo.datasets.synthetic`).

Importing this package is cheap; the generator needs only numpy until it writes a file.
"""

from __future__ import annotations

__all__: list[str] = []
