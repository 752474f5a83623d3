"""Events: the frames of one burst, or close in time on one camera, summarised by voting.

A single frame can be wrong (the animal half out of the picture, a blurred night frame), so the event's
category, species, count and confidence come from all its frames: each frame votes for the category it
saw most confidently; the species is the one with the most summed classifier confidence; the count is
the most common number of individuals seen at once among the frames that agree (the larger on a tie).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

CATEGORY_PRIORITY = {"person": 3, "vehicle": 2, "animal": 1}  # breaks exact ties: people matter most


@dataclass(frozen=True)
class BoxVote:
    category: str
    confidence: float
    species: str | None = None
    species_confidence: float | None = None


@dataclass(frozen=True)
class EventSummary:
    category: str  # animal, person, vehicle or blank
    species: str | None
    count: int
    confidence: float
    frames: int
    frames_with_detections: int


def frame_vote(boxes: list[BoxVote]) -> tuple[str, float, int] | None:
    """The category a frame votes for, its best confidence, and how many boxes of it the frame has."""
    if not boxes:
        return None
    best: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    for box in boxes:
        best[box.category] = max(best[box.category], box.confidence)
        counts[box.category] += 1
    category = max(best, key=lambda c: (best[c], CATEGORY_PRIORITY.get(c, 0)))
    return category, best[category], counts[category]


def summarise(frames: list[list[BoxVote]]) -> EventSummary:
    """Summarise an event from the boxes of each of its frames (a frame may have none)."""
    votes = [v for v in (frame_vote(boxes) for boxes in frames) if v is not None]
    if not votes:
        return EventSummary("blank", None, 0, 0.0, len(frames), 0)
    tally: dict[str, float] = defaultdict(float)
    for category, confidence, _ in votes:
        tally[category] += confidence
    category = max(
        tally, key=lambda c: (sum(1 for v in votes if v[0] == c), tally[c], CATEGORY_PRIORITY.get(c, 0))
    )
    agreeing = [v for v in votes if v[0] == category]
    count_votes = Counter(v[2] for v in agreeing)
    count = max(count_votes, key=lambda n: (count_votes[n], n))
    confidence = sum(v[1] for v in agreeing) / len(agreeing)
    species = None
    if category == "animal":
        weights: dict[str, float] = defaultdict(float)
        for boxes in frames:
            for box in boxes:
                if box.category == "animal" and box.species:
                    weights[box.species] += box.species_confidence or 0.0
        if weights:
            species = max(weights, key=lambda s: weights[s])
    return EventSummary(category, species, count, round(confidence, 4), len(frames), len(votes))


def belongs(
    started_at: datetime,
    ended_at: datetime,
    burst_ids: set[str],
    captured_at: datetime,
    burst_id: str,
    gap: timedelta,
) -> bool:
    """Does a frame join an open event: same burst, or within the time gap of the event's frames?"""
    if burst_id in burst_ids:
        return True
    return started_at - gap <= captured_at <= ended_at + gap
