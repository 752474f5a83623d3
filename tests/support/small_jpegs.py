"""Real camera-trap frames scaled down, for tests that move thousands of frames (the bytes stay real
photographs; only their size shrinks so a test run stays short)."""

from __future__ import annotations

from pathlib import Path

import cv2


def small_real_jpegs(images: Path, count: int = 24, width: int = 480) -> list[bytes]:
    sources = sorted(p for p in (images / "camera-trap").glob("*") if p.stat().st_size > 0)
    sources += sorted((images / "jaguar").glob("*.jpg"))
    frames = []
    for i in range(count):
        image = cv2.imread(str(sources[i % len(sources)]), cv2.IMREAD_REDUCED_COLOR_4)
        height = int(image.shape[0] * width / image.shape[1])
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        # a different crop per copy, so every frame has its own bytes and sha256
        image = image[i % 7 :, i % 5 :]
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        frames.append(encoded.tobytes())
    return frames
