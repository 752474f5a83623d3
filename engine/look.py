"""Where and how closely the detector looks at a frame: the passes after the first one.

The first pass runs the detector on the whole frame. When it finds nothing it is sure of (no box at
or above ``sure``, the alert threshold) but saw a candidate (a box of at least ``candidate``) or the
frame is infrared, the frame gets a closer look: the detector again at a larger input size
(``closer_input``, the same decode), and, as configured, tiles of a finer decode with
overlap (the SAHI idea: a small animal becomes large in its tile), and crops of the regions that moved
in the burst at up to native resolution (as Frigate sends motion regions to its detector). Extra
detectors (``ensemble``) run beside the first pass. All boxes of a frame are then fused per category
(NMS keeps the most confident box of each cluster; WBF averages the cluster's coordinates weighted by
confidence). Frames with a sure box cost one pass: the heavier passes run only where the first needs
them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .detector import Detection, Detector, merge_same_category
from .night import NightPrep, prepare_night
from .postprocess import iou_xywh

# The station looks closer at 832x640 on the first decode, and only where the first pass saw a
# candidate or the frame is infrared (its frames/s budget); `yaguar detect` works offline and looks
# closer at 1024x768 on a finer decode at every frame without a sure box, which the yardstick shows to
# find more (bench/quality.py, engine/README.md).
THOROUGH_CLOSER = (1024, 768)


def parse_size(text: str) -> tuple[int, int]:
    """``"1024x768"`` -> (1024, 768), for command lines."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{text!r} is not a size like 1024x768") from None
    return width, height


SURE_BURSTS = 256  # bursts remembered as having a sure box (a station sees a few at a time)
MOTION_REGIONS = 2  # the largest regions that moved get a crop each
MOTION_REGION_MAX = 0.25  # a region bigger than this (of the frame's area) is what the whole-frame passes see


class LookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sure: float = Field(
        default=0.5, ge=0, le=1, description="a box this confident needs no closer look nor a second opinion"
    )
    closer_input: tuple[int, int] | None = Field(
        default=(832, 640),
        description="[width, height] of a second pass on frames without a sure box; [0, 0] or None: none",
    )
    candidate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="a frame without a sure box gets the closer look only when the first pass saw a "
        "candidate there (a box at least this confident, below the detector's own threshold too) or it "
        "is an infrared night frame; 0: every frame without a sure box",
    )
    burst_sure: bool = Field(
        default=True,
        description="a frame without a sure box gets no closer look nor motion crops when another frame "
        "of its burst has one (the trigger's animal is known); off: every frame is looked at alone",
    )
    fit_shape: bool = Field(
        default=True,
        description="run each pass at an input cut to the frame's shape (a 4:3 frame at 416x320, not "
        "416x416 with a quarter of padding: the same pixels at the same scale, less to compute)",
    )
    tiles: Literal["off", "unsure", "night", "unsure_or_night"] = Field(
        default="off",
        description="tiled pass on a finer decode: on frames without a sure box, on night frames, or both",
    )
    tile_grid: tuple[int, int] = Field(default=(3, 3), description="tiles across and down")
    tile_overlap: float = Field(default=0.2, ge=0, lt=0.9, description="overlap of neighbouring tiles")
    night_prep: NightPrep = Field(
        default="off",
        description="contrast preparation of infrared night frames for the closer look: off, clahe, gamma",
    )
    motion_crops: bool = Field(
        default=True,
        description="on frames without a sure box, detect again on small regions that moved in the burst "
        "and have no box yet, zoomed in",
    )
    ensemble: list[str] = Field(
        default_factory=list, max_length=4, description="more detector manifests run on every frame, fused"
    )

    @field_validator("closer_input")
    @classmethod
    def _zero_is_none(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if value == (0, 0) else value  # TOML has no null: [0, 0] turns it off

    fusion: Literal["nms", "wbf"] = Field(default="nms", description="how boxes of several passes merge")
    fusion_iou: float = Field(default=0.45, gt=0, le=1, description="boxes overlapping more are one object")
    overlay_band: float = Field(
        default=0.12,
        ge=0,
        le=0.3,
        description="a box below `sure` lying wholly in the top or bottom band this high (where cameras "
        "stamp the date, time and temperature), or no taller than half of it with its middle in it (a "
        "line of text), is the stamp, not an animal",
    )
    finer_decode: bool = Field(
        default=False,
        description="the closer passes, tiles, motion crops and small classifier crops may decode the JPEG "
        "again at a finer scale (a second decode, on those frames only; `yaguar detect` does); off: they "
        "enlarge the first decode, which keeps the station within its frames/s budget",
    )
    crop_min_side: int = Field(
        default=112,
        ge=0,
        le=1024,
        description="a classifier crop smaller than this many pixels in the first decode is cut from a "
        "finer decode of the frame; 0: never decode again for crops",
    )
    implausible: list[str] = Field(
        default_factory=lambda: ["airplane", "aeroplane", "train", "bus"],
        max_length=80,
        description="detector labels a camera trap does not see: such a box always gets the second "
        "opinion and stays only if the classifier sees an animal there",
    )
    second_opinion: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="a box below `sure` is kept only when the general crop classifier's top guess reaches "
        "this probability (it recognises something there); it also decides the category of such a "
        "box; 0: off",
    )


def thorough(closer_input: tuple[int, int] | None = THOROUGH_CLOSER) -> LookConfig:
    """How `yaguar detect` looks: thoroughness before speed (a finer decode, every unsure frame)."""
    return LookConfig(closer_input=closer_input, finer_decode=True, candidate=0, burst_sure=False)


@dataclass
class LookFrame:
    """What the passes need of one frame."""

    pixels: np.ndarray  # the decode the first pass used
    night: bool
    motion_regions: list[list[float]]  # normalised [x, y, w, h], largest first
    finer: Callable[[int], np.ndarray | None]  # a decode whose longer side is at least N, if there is one
    burst: str | None = None  # the camera's trigger this frame belongs to, None: a frame on its own


def tile_boxes(
    width: int, height: int, grid: tuple[int, int], overlap: float, min_tile: int = 1
) -> list[tuple[int, int, int, int]]:
    """Pixel rectangles (x, y, w, h) of a grid of overlapping tiles covering the image. A tile is never
    smaller than ``min_tile`` on a side where the image is larger (fewer tiles instead): a tile below
    the detector's input size would only be enlarged, showing it nothing new."""

    def split(size: int, count: int) -> tuple[int, list[int]]:
        while True:
            tile = min(size, int(np.ceil(size / (count - (count - 1) * overlap))))
            if count == 1 or tile >= min_tile:
                return tile, sorted({round(i * (size - tile) / max(1, count - 1)) for i in range(count)})
            count -= 1

    tile_w, xs = split(width, grid[0])
    tile_h, ys = split(height, grid[1])
    return [(x, y, tile_w, tile_h) for y in ys for x in xs]


def _to_frame(detection: Detection, rect: tuple[int, int, int, int], width: int, height: int) -> Detection:
    """A detection on a crop, re-expressed as fractions of the whole frame."""
    x, y, w, h = rect
    bx, by, bw, bh = detection.bbox
    detection.bbox = [
        round((x + bx * w) / width, 4),
        round((y + by * h) / height, 4),
        round(bw * w / width, 4),
        round(bh * h / height, 4),
    ]
    return detection


def _cut(region: list[float]) -> tuple[float, float, float, float]:
    """A motion region with a margin, at least half the frame's width and height (a quarter of its
    area), kept inside the frame; as fractions (x, y, w, h)."""
    x, y, w, h = region
    cut_w, cut_h = min(1.0, max(0.5, w * 1.5)), min(1.0, max(0.5, h * 1.5))
    left = min(max(0.0, x + w / 2 - cut_w / 2), 1.0 - cut_w)
    top = min(max(0.0, y + h / 2 - cut_h / 2), 1.0 - cut_h)
    return left, top, cut_w, cut_h


def fuse(found: list[Detection], how: str, iou: float, passes: int = 1) -> list[Detection]:
    """Merge the boxes of several passes per category. ``nms``: the most confident box of each cluster
    stays. ``wbf``: one box per cluster, its coordinates the confidence-weighted mean of the cluster's,
    its confidence the mean over the ``passes`` that ran (a pass that saw nothing there counts 0)."""
    ordered = sorted(found, key=lambda d: -d.confidence)
    if how == "nms":
        return merge_same_category(ordered, iou)
    clusters: list[list[Detection]] = []
    for detection in ordered:
        for cluster in clusters:
            if cluster[0].category == detection.category and iou_xywh(cluster[0].bbox, detection.bbox) > iou:
                cluster.append(detection)
                break
        else:
            clusters.append([detection])
    fused = []
    for cluster in clusters:
        weights = np.array([d.confidence for d in cluster])
        boxes = np.array([d.bbox for d in cluster])
        head = cluster[0]
        head.bbox = [round(float(v), 4) for v in (boxes * weights[:, None]).sum(0) / weights.sum()]
        head.confidence = round(float(min(1.0, weights.sum() / max(passes, len(cluster)))), 4)
        fused.append(head)
    return sorted(fused, key=lambda d: -d.confidence)


class Look:
    """The passes of one Analyser: the first detector, a closer one, tiles, motion crops, ensemble."""

    def __init__(
        self,
        config: LookConfig,
        detector: Detector,
        closer: Detector | None,
        ensemble: list[Detector],
    ) -> None:
        self.config = config
        self.detector = detector
        self.closer = closer
        self.ensemble = ensemble
        self._sure_bursts: OrderedDict[str, None] = OrderedDict()  # recent bursts with a sure box

    @property
    def min_side(self) -> int:
        """The longer side the first decode needs (the first pass and the ensemble read it; the closer
        passes decode finer only for the frames that need them)."""
        return max(d.min_side for d in [self.detector, *self.ensemble])

    def detect(self, frames: list[LookFrame]) -> list[list[Detection]]:
        first, candidates = self._first_pass(frames)
        for other in self.ensemble:
            for boxes, more in zip(first, other.detect([f.pixels for f in frames]), strict=True):
                boxes.extend(more)
        passes = [1 + len(self.ensemble)] * len(frames)
        unsure = [
            i for i, boxes in enumerate(first) if not any(d.confidence >= self.config.sure for d in boxes)
        ]
        confirmed = self._confirmed(frames, first)
        unsure = [i for i in unsure if not confirmed[i]]
        closer_on = [i for i in unsure if candidates[i] or frames[i].night]
        if self.closer is not None and closer_on:
            closer = self.closer
            views = [self._prepared(frames[i], _at_least(frames[i], closer.min_side)) for i in closer_on]
            for i, more in zip(closer_on, closer.detect(views), strict=True):
                first[i].extend(more)
                passes[i] += 1
        for i, frame in enumerate(frames):
            if self._wants_tiles(frame, i in unsure):
                first[i].extend(self._tiles(frame))
                passes[i] += 1
            if self.config.motion_crops and frame.motion_regions and i in unsure:
                first[i].extend(self._motion_crops(frame, first[i]))
        return [
            self._without_stamps(fuse(boxes, self.config.fusion, self.config.fusion_iou, n))
            for boxes, n in zip(first, passes, strict=True)
        ]

    def _confirmed(self, frames: list[LookFrame], first: list[list[Detection]]) -> list[bool]:
        """Per frame, whether its burst already has a sure box (in this batch or an earlier one): the
        trigger's animal (or person) is then known, and its weaker views get no heavier passes
        (``burst_sure``). A sure box with an implausible label does not count: it may not stand."""
        if not self.config.burst_sure:
            return [False] * len(frames)
        for frame, boxes in zip(frames, first, strict=True):
            if frame.burst is not None and any(
                d.confidence >= self.config.sure and d.label not in self.config.implausible for d in boxes
            ):
                self._sure_bursts[frame.burst] = None
                self._sure_bursts.move_to_end(frame.burst)
        while len(self._sure_bursts) > SURE_BURSTS:
            self._sure_bursts.popitem(last=False)
        return [frame.burst is not None and frame.burst in self._sure_bursts for frame in frames]

    def _first_pass(self, frames: list[LookFrame]) -> tuple[list[list[Detection]], list[bool]]:
        """The first pass's boxes per frame, and whether it saw a candidate there: any box at least
        ``candidate`` confident, even below the detector's threshold, where a closer look may confirm an
        animal (a cascade: by day, frames where the first pass saw nothing at all skip the closer look).
        The boxes reported are the same as without candidates: a weaker box never suppresses a
        stronger one."""
        candidate, threshold = self.config.candidate, self.detector.threshold
        found = self.detector.detect([f.pixels for f in frames], min(candidate or threshold, threshold))
        kept = [[d for d in boxes if d.confidence >= threshold] for boxes in found]
        seen = [candidate == 0 or any(d.confidence >= candidate for d in boxes) for boxes in found]
        return kept, seen

    def _without_stamps(self, found: list[Detection]) -> list[Detection]:
        """Weak boxes of the camera's stamp (digits, logos): wholly inside the top or bottom band, or a
        line of text no taller than half the band whose middle is in it (a date burnt into a film scan
        sits just above the band's edge: its box pokes out by a few pixels)."""
        band, sure = self.config.overlay_band, self.config.sure

        def stamp(d: Detection) -> bool:
            top, bottom = d.bbox[1], d.bbox[1] + d.bbox[3]
            middle = (top + bottom) / 2
            inside = bottom <= band or top >= 1 - band
            text_line = d.bbox[3] <= band / 2 and (middle <= band or middle >= 1 - band)
            return d.confidence < sure and (inside or text_line)

        return [d for d in found if not stamp(d)]

    def _prepared(self, frame: LookFrame, image: np.ndarray) -> np.ndarray:
        return prepare_night(image, self.config.night_prep) if frame.night else image

    def _wants_tiles(self, frame: LookFrame, unsure: bool) -> bool:
        mode = self.config.tiles
        return (mode in ("unsure", "unsure_or_night") and unsure) or (
            mode in ("night", "unsure_or_night") and frame.night
        )

    def _tiles(self, frame: LookFrame) -> list[Detection]:
        tiler = self.closer or self.detector
        cols, rows = self.config.tile_grid
        side = int(tiler.min_side * max(cols, rows) * (1 - self.config.tile_overlap))
        image = self._prepared(frame, _at_least(frame, side))
        height, width = image.shape[:2]
        rects = tile_boxes(
            width, height, self.config.tile_grid, self.config.tile_overlap, tiler.min_side // 2
        )
        if len(rects) <= 1:
            return []  # an image no larger than a tile: the whole-frame passes saw it all
        found = tiler.detect([image[y : y + h, x : x + w] for x, y, w, h in rects])
        return [
            _to_frame(d, rect, width, height) for rect, boxes in zip(rects, found, strict=True) for d in boxes
        ]

    def _motion_crops(self, frame: LookFrame, found: list[Detection]) -> list[Detection]:
        """Small regions that moved and that no box covers yet, zoomed in: each is cut with a margin (a
        quarter of the frame at least) from a decode where the cut is at least the detector's input
        size (a finer decode where allowed, native resolution at most) and looked at again."""
        regions = [
            r
            for r in frame.motion_regions[:MOTION_REGIONS]
            if r[2] * r[3] <= MOTION_REGION_MAX
            and not any(iou_xywh(r, d.bbox) > 0 or _inside(d.bbox, r) for d in found)
        ]
        if not regions:
            return []
        need = self.detector.min_side
        cuts = [_cut(r) for r in regions]
        smallest = min(max(c[2], c[3]) for c in cuts)
        image = _at_least(frame, int(need / smallest))
        height, width = image.shape[:2]
        rects = [
            (int(x * width), int(y * height), max(1, int(w * width)), max(1, int(h * height)))
            for x, y, w, h in cuts
        ]
        found_crops = self.detector.detect([image[y : y + h, x : x + w] for x, y, w, h in rects])
        return [
            _to_frame(d, rect, width, height)
            for rect, boxes in zip(rects, found_crops, strict=True)
            for d in boxes
        ]


def _at_least(frame: LookFrame, side: int) -> np.ndarray:
    """The frame with its longer side at least ``side``: the first decode, or a finer one."""
    if max(frame.pixels.shape[:2]) >= side:
        return frame.pixels
    finer = frame.finer(side)
    return frame.pixels if finer is None else finer


def _inside(box: list[float], region: list[float]) -> bool:
    return (
        region[0] <= box[0] + box[2] / 2 <= region[0] + region[2]
        and region[1] <= box[1] + box[3] / 2 <= region[1] + region[3]
    )
