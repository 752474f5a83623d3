"""Training folders: what is used, what is skipped and why (no model needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from yaguar.engine.training.dataset import TrainingError, scan
from yaguar.engine.training.head import fold, score
from yaguar.engine.training.taxa import NotATaxonError, resolve
from yaguar.taxonomy import REGIONS, SPECIES

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64  # only the suffix and the bytes' hash matter to scan()


def photos(folder: Path, n: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (folder / f"{i}.jpg").write_bytes(JPEG + folder.name.encode() + bytes([i]))


@pytest.mark.parametrize(
    ("name", "scientific"),
    [
        ("Panthera onca", "Panthera onca"),
        ("panthera_onca", "Panthera onca"),
        ("chigüiro", "Hydrochoerus hydrochaeris"),
        ("chiguiro", "Hydrochoerus hydrochaeris"),
        ("capybara", "Hydrochoerus hydrochaeris"),
        ("oso de anteojos", "Tremarctos ornatus"),
        ("saíno", "Dicotyles tajacu"),
        ("cafuche", "Tayassu pecari"),
        ("danta", "Tapirus terrestris"),
        ("Harpia-harpyja", "Harpia harpyja"),
    ],
)
def test_folder_names_resolve_to_taxa(name: str, scientific: str) -> None:
    assert resolve(name).scientific == scientific


def test_the_issue_species_are_in_the_colombia_list_with_spanish_names() -> None:
    wanted = {
        "Panthera onca": "jaguar",
        "Leopardus pardalis": "ocelote",
        "Puma concolor": "puma",
        "Hydrochoerus hydrochaeris": "chigüiro",
        "Alouatta seniculus": "mono aullador rojo",
        "Harpia harpyja": "águila harpía",
        "Sarcoramphus papa": "rey de los gallinazos",
        "Tremarctos ornatus": "oso andino",
        "Tapirus terrestris": "danta",
        "Dicotyles tajacu": "saíno",
        "Tayassu pecari": "cafuche",
    }
    for scientific, spanish in wanted.items():
        assert scientific in REGIONS["colombia"]
        assert SPECIES[scientific].es == spanish


def test_a_name_that_is_not_a_taxon_says_so() -> None:
    with pytest.raises(NotATaxonError, match="'unicornio' is not a species"):
        resolve("unicornio")


def _add_non_image(root: Path) -> None:
    (root / "jaguar" / "notes.txt").write_text("not a photo")


def _add_copy(root: Path) -> None:
    (root / "jaguar" / "copy.jpg").write_bytes((root / "jaguar" / "0.jpg").read_bytes())


def _add_empty_class(root: Path) -> None:
    (root / "Tremarctos ornatus").mkdir()


def _add_not_a_taxon(root: Path) -> None:
    photos(root / "unicornio", 3)


@pytest.mark.parametrize(
    ("bad", "reason", "message"),
    [
        (_add_non_image, "not_image", "notes.txt: not a JPEG or PNG photo; skipped"),
        (_add_copy, "duplicate", "copy.jpg: the same photo as"),
        (_add_empty_class, "empty", "Tremarctos ornatus: no photos in this species folder; left out"),
        (_add_not_a_taxon, "not_taxon", "'unicornio' is not a species Yaguar knows"),
    ],
)
def test_each_bad_input_is_skipped_with_its_reason_and_the_rest_trains(
    tmp_path: Path, bad: Callable[[Path], None], reason: str, message: str
) -> None:
    photos(tmp_path / "jaguar", 3)
    photos(tmp_path / "danta", 3)
    bad(tmp_path)
    data = scan([tmp_path])
    assert [p.reason for p in data.problems] == [reason]
    assert message in data.problems[0].message
    data.drop_small_classes(3)  # two species with 3 photos each: enough to train on
    assert data.counts() == {"Panthera onca": 3, "Tapirus terrestris": 3}


def test_one_class_only_stops_with_a_reason(tmp_path: Path) -> None:
    photos(tmp_path / "jaguar", 5)
    photos(tmp_path / "ocelote", 2)  # too few: left out, leaving one species
    data = scan([tmp_path])
    with pytest.raises(TrainingError, match=r"at least two species .* only Panthera onca"):
        data.drop_small_classes(3)
    assert [p.reason for p in data.problems] == ["too_few"]


def test_a_missing_folder_stops_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="is not a folder"):
        scan([tmp_path / "nope"])


@pytest.mark.parametrize("n_classes", [2, 4])
def test_folded_head_gives_sklearn_probabilities(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    labels = np.repeat(np.arange(n_classes), 20)
    x = rng.normal(size=(len(labels), 16)) * 3 + labels[:, None] + 5
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, labels)
    head = fold(pipeline, [f"c{i}" for i in range(n_classes)])
    np.testing.assert_allclose(head.probabilities(x), pipeline.predict_proba(x), atol=1e-4)


def test_a_species_with_no_photo_held_back_is_not_scored_zero() -> None:
    # Two photos of a species can all go to training: its recall is unknown, not 0.00.
    validation = score(np.array([0, 0, 0]), np.array([0, 0, 0]), ["Panthera onca", "Puma concolor"])
    jaguar, puma = validation.per_class
    assert jaguar.shown() == ("1.00", "1.00") and (puma.support, puma.shown()) == (0, ("-", "-"))
