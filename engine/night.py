"""Preparing infrared night frames for a detector trained on daylight colour photos.

An infrared frame is grey (the motion filter recognises it: its colour channels barely differ) and
often flat: a bright centre under the illuminator, dark edges. Contrast-limited adaptive histogram
equalisation (CLAHE, on the lightness channel) or a gamma curve that lifts the shadows can give the
detector back some contrast. Whether it helps is measured, not assumed (bench/quality.py): it is off
by default.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

NightPrep = Literal["off", "clahe", "gamma"]
GAMMA = 0.6  # < 1 lifts the shadows
_GAMMA_TABLE = ((np.arange(256) / 255.0) ** GAMMA * 255).round().astype(np.uint8)


def prepare_night(image: np.ndarray, how: NightPrep) -> np.ndarray:
    """A BGR uint8 frame with its contrast prepared as ``how`` says (a new array; ``off``: the same)."""
    if how == "off":
        return image
    if how == "gamma":
        return cv2.LUT(image, _GAMMA_TABLE)
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
