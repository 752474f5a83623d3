"""Shared helpers for the engine tests: loading the shipped models once, and frames made from real ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_bgr(path: Path, reduce: int = 1) -> np.ndarray:
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}[reduce]
    image = cv2.imread(str(path), flags)
    assert image is not None, path
    return image


def encode(image: np.ndarray, ext: str = ".jpg", quality: int = 90) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, data = cv2.imencode(ext, image, params)
    assert ok
    return data.tobytes()


def sensor_noise(
    image: np.ndarray, rng: np.random.Generator, sigma: float = 4.0, quality: int = 80
) -> np.ndarray:
    """Real-world noise on a frame: Gaussian sensor noise, then a lossy JPEG round trip like the camera's."""
    noisy = np.clip(image.astype(np.float32) + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)
    return cv2.imdecode(np.frombuffer(encode(noisy, quality=quality), np.uint8), cv2.IMREAD_COLOR)


def static_burst(frame: np.ndarray, n: int, rng: np.random.Generator, jitter: int = 2) -> list[np.ndarray]:
    """A burst where nothing moves: the same scene, the camera shaking a pixel or two, fresh noise on each."""
    height, width = frame.shape[:2]
    out = []
    for _ in range(n):
        dx, dy = rng.integers(-jitter, jitter + 1, size=2)
        shifted = frame[jitter + dy : height - jitter + dy, jitter + dx : width - jitter + dx]
        out.append(sensor_noise(shifted, rng))
    return out


def moving_burst(
    background: np.ndarray, animal: np.ndarray, n: int, rng: np.random.Generator, step: float = 0.12
) -> list[np.ndarray]:
    """A burst with an animal (a crop of a real frame) walking across a real background."""
    height, width = background.shape[:2]
    ah, aw = animal.shape[:2]
    out = []
    for i in range(n):
        frame = background.copy()
        x = int(width * (0.1 + step * i))
        y = int(height * 0.55)
        x, y = min(x, width - aw), min(y, height - ah)
        frame[y : y + ah, x : x + aw] = animal
        out.append(sensor_noise(frame, rng))
    return out
