"""A classifier's dataset: an ImageFolder (train/<class>/, val/<class>/) given as its folder or a data.yaml, checked
in one line per problem, copied into the study and the proxy as ImageFolders that Ultralytics itself reads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from spaces.tasks import TASKS
from trainers.data import DataError, build_proxy_data, load_dataset, make_toy_dataset, ultralytics_data, write_resolved_yaml

CLASSIFY = TASKS["classify"]


@pytest.fixture
def toy(tmp_path):
    """A 3-class classification folder, 12 train and 6 val images of 32 px."""
    return make_toy_dataset(tmp_path / "toy", n_train=12, n_val=6, imgsz=32, n_classes=3, task="classify")


def _data_yaml(file: Path, **spec) -> Path:
    file.write_text(yaml.safe_dump(spec))
    return file


def _refused(data, task=CLASSIFY) -> str:
    """The one line `load_dataset` refuses ``data`` with."""
    with pytest.raises(DataError) as err:
        load_dataset(data, task)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_the_toy_set_is_a_folder_of_class_folders_spread_evenly(toy):
    assert sorted(p.name for p in (toy / "train").iterdir()) == ["ellipse", "rectangle", "rectangle2"]
    assert [len(list((toy / "train" / c).iterdir())) for c in ("ellipse", "rectangle", "rectangle2")] == [4, 4, 4]
    assert sum(1 for _ in (toy / "val").rglob("*.png")) == 6


def test_a_folder_and_its_data_yaml_give_the_same_dataset(toy, tmp_path):
    """Class ids are the sorted train folder names; a data.yaml's splits are relative to ``path`` or to its own
    folder, and its names are optional (a list or ids to names, equal to the folders)."""
    folder = load_dataset(toy, CLASSIFY)
    assert folder.task == "classify" and folder.names == {0: "ellipse", 1: "rectangle", 2: "rectangle2"}
    assert len(folder.train) == 12 and len(folder.val) == 6 and folder.most_objects == 0 and not folder.unusable
    assert all(folder.names[folder.class_of[image]] == image.parent.name for image in folder.train + folder.val)
    specs = [_data_yaml(tmp_path / "a.yaml", path=str(toy), train="train", val="val"),
             _data_yaml(toy / "b.yaml", train="train", val="val", names=["ellipse", "rectangle", "rectangle2"]),
             _data_yaml(tmp_path / "c.yaml", train=str(toy / "train"), val=str(toy / "val"), names=dict(folder.names))]
    for spec in specs:
        given = load_dataset(spec, CLASSIFY)
        assert (given.names, given.train, given.val, given.class_of) == (folder.names, folder.train, folder.val, folder.class_of)


def test_names_that_are_not_the_sorted_folders_are_refused(toy, tmp_path):
    said = _refused(_data_yaml(tmp_path / "d.yaml", path=str(toy), train="train", val="val", names=["rectangle", "ellipse", "rectangle2"]))
    assert "are not the sorted class folders" in said and "fix names or leave them out" in said


@pytest.mark.parametrize("name", ["validation", "valid", "test"])
def test_the_val_folder_may_have_ultralytics_other_names(toy, name):
    (toy / "val").rename(toy / name)
    assert all(p.is_relative_to(toy / name) for p in load_dataset(toy, CLASSIFY).val)


def _move_images_up(folder: Path) -> None:
    """Images directly in ``folder``, as a detection split holds them."""
    for image in list(folder.rglob("*.png")):
        image.rename(folder / f"{image.parent.name}-{image.name}")
    for sub in folder.iterdir():
        if sub.is_dir():
            sub.rmdir()


def _empty(folder: Path) -> None:
    for image in folder.iterdir():
        image.unlink()


def _unreadable(folder: Path) -> None:
    import cv2

    for image in folder.rglob("*.png"):
        cv2.imwrite(str(image), np.zeros((1, 1, 3), np.uint8))


def _one_class(toy: Path) -> None:
    for split in ("train", "val"):
        for name in ("rectangle", "rectangle2"):
            shutil.rmtree(toy / split / name)


def _new_class(folder: Path) -> None:
    shutil.copytree(folder / "ellipse", folder / "triangle")


BROKEN = {  # how the toy folder is broken, what the line says, and its fix
    "no train folder": (lambda toy: shutil.rmtree(toy / "train"), "no train folder", "add them"),
    "no val folder": (lambda toy: shutil.rmtree(toy / "val"), "no val folder", "add val/"),
    "images directly in train": (lambda toy: _move_images_up(toy / "train"), "a detection-style dataset",
                                 "give a detection --model or one folder per class"),
    "empty class folder in train": (lambda toy: _empty(toy / "train" / "rectangle"), "train/rectangle: an empty class folder",
                                    "add images of 'rectangle' or remove the folder"),
    "empty class folder in val": (lambda toy: _empty(toy / "val" / "ellipse"), "val/ellipse: an empty class folder",
                                  "add images of 'ellipse' or remove the folder"),
    "class only in val": (lambda toy: _new_class(toy / "val"), "class 'triangle' is in val but not in train",
                          "add its train images or remove the folder"),
    "class only in train": (lambda toy: shutil.rmtree(toy / "val" / "rectangle2"), "class 'rectangle2' is in train but not in val",
                            "add its val images or remove the folder"),
    "one class": (_one_class, "1 class folder(s) (ellipse) and a classifier needs at least 2 classes",
                  "add one folder of images per class"),
    "every val image unreadable": (lambda toy: _unreadable(toy / "val"), "none of the 6 val images can be used",
                                   "fix the 'val' entry or the images"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_classification_folder_is_one_line_naming_the_fix(toy, case):
    breaks, said, fix = BROKEN[case]
    breaks(toy)
    line = _refused(toy)
    assert said in line and f"; {fix}" in line and str(toy) in line


def test_detection_data_given_to_a_classifier_is_named_detection_style(tmp_path):
    """A detection data.yaml (its train: images/train, images in it, labels beside), or its folder."""
    detection = make_toy_dataset(tmp_path / "boxes", n_train=4, n_val=2, imgsz=32)
    assert "a detection-style dataset" in _refused(detection) and "give a detection --model" in _refused(detection)
    assert "a detection-style folder" in _refused(detection.parent) and "give a detection --model" in _refused(detection.parent)
    (tmp_path / "boxes" / "images" / "train" / "sub").mkdir()  # labelled images in a subfolder: still not a class
    for image in list((tmp_path / "boxes" / "images" / "train").glob("*.png")):
        image.rename(image.parent / "sub" / image.name)
    shutil.move(tmp_path / "boxes" / "labels" / "train", tmp_path / "labels-train")
    (tmp_path / "boxes" / "labels" / "train").mkdir()
    shutil.move(tmp_path / "labels-train", tmp_path / "boxes" / "labels" / "train" / "sub")
    assert "a detection-style dataset" in _refused(detection)


def test_a_classifier_data_yaml_names_one_folder_a_split(toy, tmp_path):
    line = _refused(_data_yaml(tmp_path / "e.yaml", path=str(toy), train=["train"], val="val"))
    assert "'train: ['train']' is not a folder" in line and line.endswith("fix 'train'")
    assert "'val: gone' does not exist" in _refused(_data_yaml(tmp_path / "f.yaml", path=str(toy), train="train", val="gone"))


def test_unreadable_images_are_left_out_then_refused(tmp_path):
    """As for detection: counted and kept out of the splits up to `UNUSABLE_LIMIT` of a split, refused above it."""
    import cv2

    toy = make_toy_dataset(tmp_path / "toy", n_train=30, n_val=6, imgsz=32, task="classify")
    images = sorted((toy / "train").rglob("*.png"))
    cv2.imwrite(str(images[0]), np.zeros((1, 1, 3), np.uint8))
    dataset = load_dataset(toy, CLASSIFY)
    assert [p for p, _ in dataset.unusable] == [images[0]] and images[0] not in dataset.train + tuple(dataset.class_of)
    assert "1 of 36 images are ones Ultralytics cannot use" in dataset.unusable_text()
    for image in images[1:4]:
        cv2.imwrite(str(image), np.zeros((1, 1, 3), np.uint8))
    assert "4 of 30 train images are ones Ultralytics cannot use" in _refused(toy)


def test_the_content_follows_the_images(toy):
    before = load_dataset(toy, CLASSIFY).content
    image = sorted((toy / "val").rglob("*.png"))[0]
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    assert load_dataset(toy, CLASSIFY).content != before


def test_classification_data_given_to_a_detection_model_names_the_cls_model(toy, tmp_path):
    """The folder, a data.yaml with names, and one without: each says it is a classification dataset."""
    names = ["ellipse", "rectangle", "rectangle2"]
    for data in (toy, _data_yaml(tmp_path / "g.yaml", path=str(toy), train="train", val="val", names=names),
                 _data_yaml(tmp_path / "h.yaml", path=str(toy), train="train", val="val")):
        line = _refused(data, TASKS["detect"])
        assert "a classification dataset" in line
        assert line.endswith("; give a -cls --model (e.g. --model yolov8n-cls.yaml) or a detect data.yaml")


def test_a_detection_folder_with_split_subfolders_is_still_a_folder_not_a_data_file(tmp_path):
    """train/images and train/labels (as Roboflow exports them) are not class folders."""
    detection = make_toy_dataset(tmp_path / "boxes", n_train=4, n_val=2, imgsz=32)
    for kind in ("images", "labels"):
        shutil.copytree(detection.parent / kind / "train", tmp_path / "export" / "train" / kind)
    assert "a folder, not a data file" in _refused(tmp_path / "export", TASKS["detect"])


def test_the_study_view_and_the_proxy_are_image_folders_ultralytics_reads(toy, tmp_path):
    """The view links each image under data/<split>/<class>/; the proxy resizes them under <split>/<class>/ with no
    label files; `ultralytics_data` gives both as their folder, which Ultralytics' own classification checks and
    dataset read with our classes (the proxy's image-check caches only read, as trainings started together must)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import ClassificationDataset
    from ultralytics.data.utils import check_cls_dataset

    dataset = load_dataset(toy, CLASSIFY)
    resolved = write_resolved_yaml(dataset, tmp_path / "study" / "data.yaml")
    view = tmp_path / "study" / "data"
    assert yaml.safe_load(resolved.read_text()) == {"task": "classify", "train": "data/train", "val": "data/val", "names": dataset.names}
    assert sorted(p.name for p in (view / "val").iterdir()) == list(dataset.names.values())
    assert all(p.is_symlink() for p in (view / "train").rglob("*.png")) and len(list((view / "train").rglob("*.png"))) == 12
    assert ultralytics_data(resolved) == str(view.resolve())
    proxy = build_proxy_data(dataset, tmp_path / "proxy", imgsz=16)
    assert yaml.safe_load(proxy.read_text()) == {"task": "classify", "train": "train", "val": "val", "names": dataset.names}
    assert ultralytics_data(proxy) == str(proxy.parent.resolve())
    assert not (proxy.parent / "images").exists() and not (proxy.parent / "labels").exists()
    import cv2

    assert {cv2.imread(str(p)).shape[:2] for p in (proxy.parent / "train").rglob("*.jpg")} == {(16, 16)}
    checked = check_cls_dataset(ultralytics_data(proxy))
    assert checked["names"] == dataset.names
    caches = {split: proxy.parent / f"{split}.cache" for split in ("train", "val")}  # written with the proxy, then only read
    stamps = {split: cache.stat().st_mtime_ns for split, cache in caches.items()}
    for data in (ultralytics_data(resolved), ultralytics_data(proxy)):
        for split, images in (("train", dataset.train), ("val", dataset.val)):
            read = ClassificationDataset(str(Path(data) / split), get_cfg(overrides={"imgsz": 32}), augment=False, prefix=split,
                                         names=dataset.names)
            assert sorted(cls for _, cls, *_ in read.samples) == sorted(dataset.class_of[image] for image in images)
    assert {split: cache.stat().st_mtime_ns for split, cache in caches.items()} == stamps


def test_ultralytics_data_of_a_detection_yaml_is_the_yaml(tmp_path):
    detection = make_toy_dataset(tmp_path / "boxes", n_train=4, n_val=2, imgsz=32)
    proxy = build_proxy_data(load_dataset(detection), tmp_path / "proxy", imgsz=32)
    assert ultralytics_data(proxy) == str(proxy)


@pytest.mark.parametrize("seed", range(4))
def test_a_proxy_subset_keeps_every_class(toy, tmp_path, seed):
    """A tenth of 12 images is one image: the other classes get one image each, so the proxy names every class."""
    proxy = build_proxy_data(load_dataset(toy, CLASSIFY), tmp_path / "proxy", imgsz=16, fraction=0.1, seed=seed)
    counts = [len(list((proxy.parent / "train" / c).iterdir())) for c in ("ellipse", "rectangle", "rectangle2")]
    assert counts == [1, 1, 1]


def test_a_proxy_follows_the_classes_of_the_data(toy, tmp_path):
    """An image moved to another class is rebuilt into that class in the proxy; the old class folder leaves."""
    out = tmp_path / "proxy"
    build_proxy_data(load_dataset(toy, CLASSIFY), out, imgsz=16)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    build_proxy_data(load_dataset(toy, CLASSIFY), out, imgsz=16)
    assert (out / "manifest.json").stat().st_mtime_ns == stamp  # unchanged data: reused
    for split in ("train", "val"):
        (toy / split / "rectangle2").rename(toy / split / "square")
    build_proxy_data(load_dataset(toy, CLASSIFY), out, imgsz=16)
    assert sorted(p.name for p in (out / "train").iterdir()) == ["ellipse", "rectangle", "square"]
