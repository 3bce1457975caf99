"""The dataset a study trains on: resolved once, checked for labels Ultralytics would drop, and
a proxy cache that follows the data's content. Real files, real Ultralytics dataset checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from trainers.data import DataError, build_proxy_data, load_dataset, make_toy_dataset, write_resolved_yaml


@pytest.fixture
def toy(tmp_path):
    return make_toy_dataset(tmp_path / "toy", n_train=12, n_val=6, imgsz=32)


def _relative(data):
    """The same data.yaml with ``path: .``, as many users write it."""
    spec = yaml.safe_load(data.read_text())
    data.write_text(yaml.safe_dump({**spec, "path": "."}))
    return data


def test_relative_path_resolves_against_the_yaml_wherever_ultralytics_reads_it(tmp_path, monkeypatch):
    from ultralytics.data.utils import check_det_dataset

    import trainers.offline  # noqa: F401  (offline-safe Ultralytics first)

    mine = _relative(make_toy_dataset(tmp_path / "mine", n_train=4, n_val=2, imgsz=32))
    other = _relative(make_toy_dataset(tmp_path / "other", n_train=5, n_val=3, imgsz=32))
    monkeypatch.chdir(other.parent)  # started from another dataset's folder
    resolved = write_resolved_yaml(load_dataset(mine), tmp_path / "study" / "data.yaml")
    checked = check_det_dataset(str(resolved))
    for split in ("train", "val"):
        listed = sorted(Path(checked[split]).iterdir())
        assert listed and all(p.resolve().is_relative_to(mine.parent.resolve()) for p in listed)
    assert checked["names"] == load_dataset(mine).names


def test_the_study_reads_the_users_data_through_a_view_and_writes_nothing_beside_it(toy, tmp_path):
    """Images linked, labels copied into the study; a JPEG Ultralytics would rewrite in place (no end
    marker) is copied; Ultralytics' label caches land in the study."""
    import cv2
    from ultralytics.data.utils import check_det_dataset

    from trainers.data import write_label_caches

    image = sorted((toy.parent / "images" / "train").iterdir())[0]
    jpeg = image.with_suffix(".jpg")
    cv2.imwrite(str(jpeg), cv2.imread(str(image)))
    jpeg.write_bytes(jpeg.read_bytes() + b"\x00\x00")  # decodes, but does not end with FFD9: Ultralytics rewrites it
    image.unlink()
    before = {p: p.stat().st_mtime_ns for p in toy.parent.rglob("*")}
    resolved = write_resolved_yaml(load_dataset(toy), tmp_path / "study" / "data.yaml")
    view = sorted((tmp_path / "study" / "data" / "images" / "train").iterdir())
    assert not view[0].is_symlink() and all(p.is_symlink() for p in view[1:])
    write_label_caches(tmp_path / "study" / "data", check_det_dataset(str(resolved)), "detect")
    assert (tmp_path / "study" / "data" / "labels" / "train.cache").is_file()
    assert {p: p.stat().st_mtime_ns for p in toy.parent.rglob("*")} == before


def test_a_yaml_without_path_given_by_a_relative_name_finds_its_images(tmp_path, monkeypatch):
    """bccd's data.yaml has no ``path:``; named relatively (``data/bccd/data.yaml``), its folder
    was once joined twice (data/bccd/data/bccd/images/train)."""
    data = make_toy_dataset(tmp_path / "data" / "toy", n_train=4, n_val=2, imgsz=32)
    spec = yaml.safe_load(data.read_text())
    data.write_text(yaml.safe_dump({k: v for k, v in spec.items() if k != "path"}))
    monkeypatch.chdir(tmp_path)
    dataset = load_dataset(os.path.join("data", "toy", data.name))
    assert len(dataset.train) == 4 and all(p.is_file() for p in dataset.train + dataset.val)


def test_labels_ultralytics_would_drop_are_counted_then_refused(toy):
    labels = sorted((toy.parent / "labels" / "train").iterdir())
    labels[0].write_text("0 0.5 0.5 1.4 0.2\n")  # box wider than the image
    dataset = load_dataset(toy)
    assert [p for p, _ in dataset.unusable] == [labels[0]]
    assert "1 of 18 images" in dataset.unusable_text() and "outside [0, 1]" in dataset.unusable_text()
    labels[1].write_text("0 0.5 0.5 0.2\n")  # a column missing
    labels[2].write_text("1 0.5 0.5 0.2 0.2 0.7\n")  # one too many
    with pytest.raises(DataError, match="3 of 12 train images are ones Ultralytics cannot use") as err:
        load_dataset(toy)
    assert "\n" not in str(err.value)


def test_a_val_split_without_objects_is_refused(toy):
    for label in (toy.parent / "labels" / "val").iterdir():
        label.write_text("")
    with pytest.raises(DataError, match="val split has no labelled objects"):
        load_dataset(toy)


@pytest.mark.parametrize("missing", [False, True], ids=["empty label files", "no label files"])
def test_a_train_split_without_objects_is_refused_as_the_empty_val_split_is(toy, missing):
    """Every train label empty (or gone), val labelled: nothing to learn from, refused before anything trains (issue 34)."""
    for label in (toy.parent / "labels" / "train").iterdir():
        label.unlink() if missing else label.write_text("")
    with pytest.raises(DataError, match="the train split has no labelled objects") as err:
        load_dataset(toy)
    assert "\n" not in str(err.value) and "label the train images" in str(err.value)


def test_a_folder_given_as_data_is_named_a_folder(toy):
    """--data <the dataset's folder>: not "not found" for a folder that exists; the fix names a data.yaml."""
    with pytest.raises(DataError, match="a folder, not a data file; give a data.yaml") as err:
        load_dataset(toy.parent)
    assert str(toy.parent / "data.yaml") in str(err.value)


def test_proxy_cache_follows_the_content(toy, tmp_path):
    out = tmp_path / "proxy"
    first = build_proxy_data(load_dataset(toy), out, imgsz=32)
    label = sorted((toy.parent / "labels" / "train").iterdir())[0]
    stamp = (out / "manifest.json").stat().st_mtime_ns
    build_proxy_data(load_dataset(toy), out, imgsz=32)
    assert (out / "manifest.json").stat().st_mtime_ns == stamp  # unchanged data: reused
    label.write_text("1 0.5 0.5 0.25 0.25\n")  # a fixed label
    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 10**9))
    build_proxy_data(load_dataset(toy), out, imgsz=32)
    copied = sorted((out / "labels" / "train").iterdir())[0]
    assert first == out / "data.yaml" and copied.read_text() == "1 0.5 0.5 0.25 0.25\n"


def test_an_image_removed_from_the_dataset_leaves_the_proxy(toy, tmp_path):
    out = tmp_path / "proxy"
    build_proxy_data(load_dataset(toy), out, imgsz=32)
    gone = sorted((toy.parent / "images" / "train").iterdir())[0]
    gone.unlink()
    (toy.parent / "labels" / "train" / f"{gone.stem}.txt").unlink()
    build_proxy_data(load_dataset(toy), out, imgsz=32)
    assert len(list((out / "images" / "train").iterdir())) == len(list((out / "labels" / "train").glob("*.txt"))) == 11


def test_trainings_started_together_only_read_the_proxy_label_caches(toy, tmp_path):
    """Two trainings that both find no label cache race to write it, and Ultralytics' writer fails in
    the loser (seen here in 1 of 24 processes started at once); `build_proxy_data` writes both caches
    first, and a training then reads them as they are (the real Ultralytics dataset)."""
    from ultralytics.data.dataset import YOLODataset

    out = tmp_path / "proxy"
    build_proxy_data(load_dataset(toy), out, imgsz=32)
    caches = {split: out / "labels" / f"{split}.cache" for split in ("train", "val")}
    stamps = {split: cache.stat().st_mtime_ns for split, cache in caches.items()}
    for split in caches:
        dataset = YOLODataset(img_path=str(out.resolve() / "images" / split), data={"names": {0: "a", 1: "b"}}, augment=False)
        assert len(dataset.labels) == {"train": 12, "val": 6}[split]
    assert {split: cache.stat().st_mtime_ns for split, cache in caches.items()} == stamps  # read, not written again


def test_proxy_builders_of_one_study_wait_for_one_another(toy, tmp_path):
    """A second worker building the same proxy waits while the first holds the lock, then reuses its files."""
    from filelock import FileLock

    out = tmp_path / "proxy"
    out.mkdir()
    code = f"from trainers.data import build_proxy_data, load_dataset; build_proxy_data(load_dataset({str(toy)!r}), {str(out)!r}, imgsz=32)"
    with FileLock(out / ".lock"):  # the first worker, building
        other = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent.parent)
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=5)
        assert not (out / "manifest.json").exists()
    assert other.wait(timeout=120) == 0 and (out / "manifest.json").is_file()


def test_a_study_file_rewritten_while_it_is_read_is_read_whole(toy, tmp_path):
    """A worker joining a study rewrites its data.yaml and data view (and run.yaml, space.yaml) while another
    worker's training may be reading them: that reader gets the whole files it opened, not ones truncated
    and written again under it (shown with a dataset that changes, so that the two can be told apart)."""
    resolved = write_resolved_yaml(load_dataset(toy), tmp_path / "study" / "data.yaml")
    label = sorted((tmp_path / "study" / "data" / "labels" / "train").iterdir())[0]
    before, yaml_before = label.read_text(), resolved.read_text()
    sorted((toy.parent / "images" / "train").iterdir())[0].unlink()
    with label.open() as reader, resolved.open() as yaml_reader:  # a training that opened them a moment before
        write_resolved_yaml(load_dataset(toy), resolved)
        assert reader.read() == before and yaml_reader.read() == yaml_before
    assert len(list((tmp_path / "study" / "data" / "images" / "train").iterdir())) == len(load_dataset(toy).train)
    assert not [p.name for p in resolved.parent.iterdir() if p.name.endswith((".tmp", ".new"))]


@pytest.mark.parametrize("names, said", [("raccoon", "names must be a list or a mapping"),
                                         ({"a": "raccoon"}, "names keys must be class ids"),
                                         ({0: "a", 2: "b"}, "class ids must run 0..nc-1 without gaps")])
def test_names_that_are_not_class_ids_are_one_line(toy, tmp_path, names, said):
    spec = yaml.safe_load(Path(toy).read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**spec, "names": names}))
    with pytest.raises(DataError, match=said) as err:
        load_dataset(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_list_lines_follow_ultralytics_and_missing_images_are_named(toy):
    """``./`` lines of a list are relative to the list's folder, as Ultralytics reads them; listed images
    that do not exist are counted with the other left-out images, and a list where none exists is one line."""
    spec = yaml.safe_load(toy.read_text())
    images = sorted((toy.parent / "images" / "val").iterdir())
    lists = toy.parent / "lists"
    lists.mkdir()
    (lists / "val.txt").write_text("".join(f"./../images/val/{p.name}\n" for p in images))
    toy.write_text(yaml.safe_dump({**spec, "val": "lists/val.txt"}))
    assert [p.resolve() for p in load_dataset(toy).val] == [p.resolve() for p in images]
    (lists / "val.txt").write_text("".join(f"./../images/val/{p.name}\n" for p in images) + "./gone.png\n")
    with pytest.raises(DataError, match=r"1 of 7 val images are ones Ultralytics cannot use \(e.g. .*gone.png: image file not found"):
        load_dataset(toy)  # 1 of 7 is above the 10% Ultralytics-drop limit
    (lists / "val.txt").write_text("./gone.png\n./also-gone.png\n")
    with pytest.raises(DataError, match="none of the 2 val images can be used") as err:
        load_dataset(toy)
    assert "image file not found" in str(err.value) and "\n" not in str(err.value)


def test_images_and_labels_ultralytics_leaves_out_are_counted_and_kept_out_of_the_study(toy, tmp_path):
    """A 1x1 image, a JPEG cut short and a label with nan: each counted as Ultralytics would drop it; the
    images are not in the study's splits (the proxy re-encodes a cut JPEG that the final training drops)."""
    import cv2

    train = sorted((toy.parent / "images" / "train").iterdir())
    cv2.imwrite(str(train[0]), np.zeros((1, 1, 3), np.uint8))
    jpeg = train[1].with_suffix(".jpg")
    cv2.imwrite(str(jpeg), cv2.imread(str(train[1])))
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    train[1].unlink()
    (toy.parent / "labels" / "val" / f"{sorted((toy.parent / 'images' / 'val').iterdir())[0].stem}.txt").write_text("0 nan 0.5 0.2 0.2\n")
    spec = yaml.safe_load(toy.read_text())
    for split in ("train", "val"):  # 30 images a split, so that 3 left out stay under the 10% limit
        extra = toy.parent / "images" / f"{split}-more"
        extra.mkdir()
        (toy.parent / "labels" / f"{split}-more").mkdir()
        for n in range(24):
            cv2.imwrite(str(extra / f"m{n}.png"), np.full((32, 32, 3), 90, np.uint8))
            (toy.parent / "labels" / f"{split}-more" / f"m{n}.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    toy.write_text(yaml.safe_dump({**spec, "train": ["images/train", "images/train-more"], "val": ["images/val", "images/val-more"]}))
    dataset = load_dataset(toy)
    why = {path.name: reason for path, reason in dataset.unusable}
    assert why[train[0].name] == "image of 1x1 px, under Ultralytics' 10 px a side"
    assert why[jpeg.name].startswith("image cannot be decoded (OSError: ")
    assert any(reason.endswith("has nan values") for reason in why.values())
    assert train[0] not in dataset.train and jpeg not in dataset.train and len(dataset.train) == 34
    assert "3 of 66 images are ones Ultralytics cannot use" in dataset.unusable_text()


def test_a_data_yaml_that_is_not_text_is_one_line(tmp_path):
    bad = tmp_path / "data.yaml"
    bad.write_bytes(b"\xff\xfe\x00binary\x81")
    with pytest.raises(DataError, match="data.yaml: not a UTF-8 text file"):
        load_dataset(bad)


def test_every_val_image_unreadable_is_one_line(toy):
    import cv2

    for image in (toy.parent / "images" / "val").iterdir():
        cv2.imwrite(str(image), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(DataError, match="none of the 6 val images can be used .*under Ultralytics' 10 px a side"):
        load_dataset(toy)
