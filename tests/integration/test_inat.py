"""``yaguar data inat`` against a local fake of the iNaturalist API (real response shape): pages,
licences, attribution, the per-species cap, 429s, dropped links, skipped photos, and resuming."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_inat import FakeInat
from yaguar.engine.cli import main
from yaguar.engine.inat import InatDownload, InatOptions

JAGUAR, TAPIR = "Panthera onca", "Tapirus terrestris"


@pytest.fixture
def fake(images: Path) -> Iterator[FakeInat]:
    server = FakeInat(images / "jaguar" / "AABP_13_20051007_1205.jpg")
    server.add(101, JAGUAR, [{"id": 1, "license_code": "cc-by"}])
    server.add(102, JAGUAR, [{"id": 2, "license_code": "cc0"}, {"id": 3, "license_code": "cc-by-nd"}])
    server.add(
        103, JAGUAR, [{"id": 4, "license_code": None}, {"id": 5, "license_code": "cc-by-nc", "url": ""}]
    )
    server.add(104, JAGUAR, [{"id": 6, "license_code": "cc-by-nc"}])
    server.add(105, JAGUAR, [{"id": 7, "license_code": "cc-by"}])
    server.add(201, TAPIR, [{"id": 20, "license_code": "CC-BY"}])
    yield server
    server.close()


def _options(fake: FakeInat, out: Path, per_species: int) -> InatOptions:
    return InatOptions(
        species=[JAGUAR, TAPIR], out_dir=out, per_species=per_species, per_page=2,
        api_url=fake.api_url, per_second=4, burst=1, photos_per_second=50, progress=False,
    )  # fmt: skip


def test_download_pages_filters_attributes_and_survives_429_and_drops(fake: FakeInat, tmp_path: Path) -> None:
    fake.api_script = ["429", "ok", "drop", "429-no-header"]
    fake.photo_script = {6: "drop"}
    out = tmp_path / "inat"
    summary = InatDownload(_options(fake, out, per_species=10)).run()
    assert summary.saved == {JAGUAR: 4, TAPIR: 1}
    assert summary.skipped == {"licence_not_wanted": 1, "unknown_licence": 1, "no_photo_url": 1}
    assert sorted(p.name for p in (out / JAGUAR).iterdir()) == [f"inat-{i}.jpg" for i in (1, 2, 6, 7)]
    assert [a for _, _, a in fake.api_requests][:4] == ["429", "ok", "drop", "429-no-header"]
    queries = [q for _, q, a in fake.api_requests if a == "ok"]
    assert all(q["place_id"] == ["7827"] and q["quality_grade"] == ["research"] for q in queries)
    assert queries[0]["photo_license"] == ["CC0,CC-BY,CC-BY-NC"]
    assert [q["id_above"] for q in queries if q["taxon_name"] == [JAGUAR]] == [
        ["0"],
        ["0"],
        ["102"],
        ["104"],
        ["105"],
    ][-len([q for q in queries if q["taxon_name"] == [JAGUAR]]) :]
    # at most 4 requests in any second, counting those that went through the limiter (the HTTP adapter
    # itself repeats a request after a dropped link or a 429 with Retry-After)
    sent = [
        t
        for (t, _, _), prev in zip(
            fake.api_requests, ["ok", *[a for _, _, a in fake.api_requests]], strict=False
        )
        if prev not in ("drop", "429")
    ]
    assert len(sent) > 4 and min(b - a for a, b in zip(sent, sent[4:], strict=False)) >= 0.95
    with open(out / "attribution.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["photo_id"] for r in rows] == ["1", "2", "6", "7", "20"]
    first = rows[0]
    assert first["observer"] == "Observadora 101" and first["licence"] == "cc-by"
    assert first["observed_on"].startswith("2023-05-04") and first["place"] == "Puerto Gaitán, Meta, Colombia"
    assert first["observation_url"] == "https://www.inaturalist.org/observations/101"
    assert first["photo_url"].endswith("/photos/1/medium.jpg") and first["file"] == f"{JAGUAR}/inat-1.jpg"
    assert rows[-1]["licence"] == "cc-by"  # "CC-BY" in the answer


def test_cap_and_resume_fetch_nothing_twice(
    fake: FakeInat, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "inat"
    assert InatDownload(_options(fake, out, per_species=2)).run().saved == {JAGUAR: 2, TAPIR: 1}
    assert sorted(fake.photo_requests) == [1, 2, 20]
    args = ["data", "inat", "--out", str(out), "--taxa", "jaguar", "danta", "--per-species", "10",
            "--api-url", fake.api_url, "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert sorted(fake.photo_requests) == [1, 2, 6, 7, 20]  # the second run only fetched what was new
    printed = capsys.readouterr().out
    assert f"  {JAGUAR:32}     4" in printed and "skipped / descartadas:" in printed
    with open(out / "attribution.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 5


def test_unknown_species_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "inat", "--out", str(tmp_path), "--taxa", "unicornio", "--no-progress"]) == 2
    assert "'unicornio' is not a species" in capsys.readouterr().out
