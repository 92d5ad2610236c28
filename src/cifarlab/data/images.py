"""Reading and resizing images: the one preprocessing path every command shares.

Models normalize inside themselves, so preprocessing is only: decode -> RGB uint8 -> resize to the
model's input size. `train`, `evaluate`, `predict` and `live` all call `resize_rgb`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cifarlab.errors import CifarlabError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
# Pillow refuses images above twice this many pixels (decompression bombs); 64 Mpx is far beyond
# any photo a small-image classifier needs.
MAX_IMAGE_PIXELS = 64_000_000
# Transparent pixels are composited onto this background (mid-grey: no bias toward a class that
# happens to be bright or dark).
ALPHA_BACKGROUND = (128, 128, 128)
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxWx3 uint8 image to (height, width).

    INTER_AREA when shrinking (it averages the source pixels, so a 720p crop does not alias into
    noise at 32x32), INTER_LINEAR when enlarging (INTER_AREA degrades to nearest there).
    """
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] >= height and image.shape[1] >= width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of letting PIL clip at 255.
        array = np.asarray(img, dtype=np.float64)
        peak = array.max() if array.size and array.max() > 255 else 255.0
        img = Image.fromarray(np.round(array / peak * 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, ALPHA_BACKGROUND)
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file (first frame of a GIF) to HxWx3 uint8 RGB, or raise CifarlabError."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.seek(0)
                img.load()
                return np.asarray(_to_rgb(img), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CifarlabError(
            f"{path}: image is larger than {MAX_IMAGE_PIXELS:,} pixels (possible decompression "
            "bomb); shrink it first"
        ) from None
    except FileNotFoundError:
        raise CifarlabError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CifarlabError(
            f"{path}: not a readable image ({exc.__class__.__name__}: {exc}); "
            "replace or remove the file"
        ) from None


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
