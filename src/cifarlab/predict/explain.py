"""`cifarlab predict --explain DIR`: a class-activation map for each classified image.

For each image: `<name>.cam.png` (the image at its own size with the map of the explained class
blended over it, label and confidence written on it) and `<name>.cam.npy` (the raw map: float32,
H x W of the input image, values in [0, 1]). `<name>` is the file's stem; a second input with the
same stem gets `-2`, `-3`, ...
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from cifarlab.atomic import write_atomic
from cifarlab.data.images import read_image_rgb
from cifarlab.errors import CifarlabError
from cifarlab.inference.cam import CamExplainer, overlay_heatmap, resize_map


class ExplainWriter:
    def __init__(self, classifier, out_dir: Path, class_name: str | None = None):
        if class_name is not None and class_name not in classifier.class_names:
            raise CifarlabError(f"--explain-class {class_name!r} is not one of the model's classes: "
                                f"{', '.join(classifier.class_names)}")
        self.class_names = classifier.class_names
        self.class_index = None if class_name is None else classifier.class_names.index(class_name)
        self.explainer = CamExplainer(classifier.model)
        self.out_dir = Path(out_dir)
        self.used: set[str] = set()

    def write(self, paths: list[Path], images: np.ndarray) -> None:
        """Maps for model-sized `images` (from `paths`), written beside each other in out_dir."""
        maps, probabilities = self.explainer.explain(images, self.class_index)
        for path, cam, probs in zip(paths, maps, probabilities):
            index = int(probs.argmax()) if self.class_index is None else self.class_index
            original = read_image_rgb(path)
            full = resize_map(cam, original.shape[:2])
            stem = self._unique(path.stem)
            picture = label(overlay_heatmap(original, full), f"{self.class_names[index]} {probs[index]:.0%}")
            ok, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            write_atomic(self.out_dir / f"{stem}.cam.png", png.tobytes())
            buffer = io.BytesIO()
            np.save(buffer, full.astype(np.float32))
            write_atomic(self.out_dir / f"{stem}.cam.npy", buffer.getvalue())

    def _unique(self, stem: str) -> str:
        name, n = stem, 1
        while name in self.used:
            n += 1
            name = f"{stem}-{n}"
        self.used.add(name)
        return name


def label(image: np.ndarray, text: str) -> np.ndarray:
    """`text` on a dark band along the top of the image, scaled to its width."""
    out = image.copy()
    scale = max(0.3, out.shape[1] / 400)
    thickness = max(1, round(scale * 1.5))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = h + base + 6
    out[:band] = (out[:band] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
