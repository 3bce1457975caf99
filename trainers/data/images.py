"""The images of a split Ultralytics cannot read and would drop (its ``check_image``), and the share it may drop.

Ultralytics is imported inside functions: search's demo command imports this package before `prepare_ultralytics`.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from trainers.data.dataset import DataError

UNUSABLE_LIMIT = 0.1  # largest share of a split's images whose labels Ultralytics drops before we refuse


def _image_problem(image: Path) -> str | None:
    """Why Ultralytics would leave ``image`` out (its ``check_image``: unreadable, under 10 px a side, a format
    it does not read, a JPEG cut short that cannot be decoded whole), or None. Ultralytics repairs a JPEG
    without its end marker by rewriting the file; this check only decodes it."""
    from ultralytics.data.utils import IMG_FORMATS, exif_size

    if not image.is_file():
        return "image file not found"
    try:
        with Image.open(image) as im:
            im.verify()
            w, h = exif_size(im)
            kind = (im.format or "").lower()
        if w < 10 or h < 10:
            return f"image of {w}x{h} px, under Ultralytics' 10 px a side"
        if kind not in IMG_FORMATS | {"jpeg2000"}:
            return f"image format {kind or 'unknown'} Ultralytics does not read"
        if kind in ("jpg", "jpeg") and not jpeg_ends(image):
            with Image.open(image) as im:
                im.load()
    except Exception as e:  # PIL raises many kinds for a damaged file
        return f"image cannot be decoded ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


def jpeg_ends(image: Path) -> bool:
    """Whether a JPEG file ends with its FFD9 marker (Ultralytics rewrites one that does not)."""
    with image.open("rb") as f:
        return f.seek(0, 2) >= 2 and f.seek(-2, 2) >= 0 and f.read() == b"\xff\xd9"


def broken_images(listed: list[Path], split: str, source: Path) -> list[tuple[Path, str]]:
    """The images of ``listed`` (one split) Ultralytics cannot read, with why; ``DataError`` when that is every one."""
    broken = [(image, why) for image in listed if (why := _image_problem(image))]
    if listed and len(broken) == len(listed):
        image, why = broken[0]
        raise DataError(f"{source}: none of the {len(listed)} {split} images can be used (e.g. {image}: {why}); fix the "
                        f"'{split}' entry or the images")
    return broken


def check_dropped(dropped: list[tuple[Path, str]], listed: list[Path], split: str, source: Path) -> None:
    """``DataError`` when Ultralytics would drop (``dropped``: file, why) more than `UNUSABLE_LIMIT` of a split's images."""
    if len(dropped) > UNUSABLE_LIMIT * len(listed):
        path, why = dropped[0]
        raise DataError(f"{source}: {len(dropped)} of {len(listed)} {split} images are ones Ultralytics cannot use "
                        f"(e.g. {path}: {why}); fix those files")
