"""Class-activation maps (cifarlab.inference.cam).

The pointing game is the test that can fail: a small `fast` model is trained on generated
cluttered images holding one 8x8 object whose shape is the label; the map's peak must fall on the
object (its box + 1 px) for >= 90% of held-out images, and must not for the same model with its
weights shuffled (a map that only follows edges or colours would pass the first and fail the
second). bench/cam_pointing.py imports the generators and scorer from here, so its figures are
the same measurement.
"""

from __future__ import annotations

import numpy as np
import pytest

SIZE = 32
OBJECT = 8
SHAPES = ("circle", "square", "triangle", "cross")


def _object_mask(label: int) -> np.ndarray:
    import cv2

    mask = np.zeros((OBJECT, OBJECT), np.uint8)
    if label == 0:  # circle of radius 3.75 centred in the cell (cv2 sub-pixel shift 4 = 1/16 px)
        cv2.circle(mask, (56, 56), 60, 1, -1, cv2.LINE_8, 4)
    elif label == 1:
        mask[1:-1, 1:-1] = 1
    elif label == 2:
        cv2.fillPoly(mask, [np.array([[4, 0], [0, 7], [7, 7]], np.int32)], 1)
    else:
        mask[3:5, :] = 1
        mask[:, 3:5] = 1
    return mask.astype(bool)


def clutter(rng: np.random.Generator) -> np.ndarray:
    """A 32x32 background: a random tint with noise, 3-6 thin coloured ellipses, 2-4 lines."""
    import cv2

    image = rng.integers(0, 256, 3).astype(np.float32) * 0.5 + rng.normal(0, 18, (SIZE, SIZE, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 7)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        center = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        axes = (int(rng.integers(4, 9)), int(rng.integers(1, 3)))
        cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
    for _ in range(rng.integers(2, 5)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        p, q = rng.integers(-4, SIZE + 4, 2), rng.integers(-4, SIZE + 4, 2)
        cv2.line(image, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, 1)
    return image


def paste_object(image: np.ndarray, label: int, x0: int, y0: int, color) -> np.ndarray:
    region = image[y0:y0 + OBJECT, x0:x0 + OBJECT]
    region[_object_mask(label)] = color
    return np.array([x0, y0, x0 + OBJECT - 1, y0 + OBJECT - 1], np.int32)


def pointing_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images uint8 (n, 32, 32, 3), labels (n,) in 0..3, boxes (n, 4) as x0, y0, x1, y1
    inclusive): one object of a random colour at a random position on clutter."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPES))
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    boxes = np.empty((n, 4), np.int32)
    for i, label in enumerate(labels):
        images[i] = clutter(rng)
        x0, y0 = (int(v) for v in rng.integers(0, SIZE - OBJECT + 1, 2))
        boxes[i] = paste_object(images[i], label, x0, y0, rng.integers(0, 256, 3))
    return images, labels, boxes


def two_object_data(n: int, seed: int):
    """Images holding two objects of different classes, at least 2 px apart:
    (images, labels_a, boxes_a, labels_b, boxes_b)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    labels = np.empty((2, n), np.int64)
    boxes = np.empty((2, n, 4), np.int32)
    for i in range(n):
        images[i] = clutter(rng)
        labels[:, i] = rng.choice(len(SHAPES), 2, replace=False)
        first = rng.integers(0, SIZE - OBJECT + 1, 2)
        while True:
            second = rng.integers(0, SIZE - OBJECT + 1, 2)
            if np.abs(second - first).max() >= OBJECT + 2:
                break
        for j, (x0, y0) in enumerate((first, second)):
            boxes[j, i] = paste_object(images[i], labels[j, i], int(x0), int(y0), rng.integers(0, 256, 3))
    return images, labels[0], boxes[0], labels[1], boxes[1]


def pointing_hits(maps: np.ndarray, boxes: np.ndarray, margin: int = 1) -> np.ndarray:
    """Per image: does the map's argmax (first one in row-major order) fall in the box + margin?"""
    rows, cols = np.divmod(maps.reshape(len(maps), -1).argmax(1), maps.shape[2])
    return ((cols >= boxes[:, 0] - margin) & (cols <= boxes[:, 2] + margin)
            & (rows >= boxes[:, 1] - margin) & (rows <= boxes[:, 3] + margin))


def train_pointing_model(seed: int = 0, n: int = 3000, epochs: int = 10):
    """A `fast` (16, 32, 32) model trained on pointing_data (~12 s on 2 cores; ~99% accuracy)."""
    import keras

    from cifarlab.data.stats import channel_stats
    from cifarlab.models.registry import build_model

    keras.utils.set_random_seed(seed)
    images, labels, _ = pointing_data(n, seed=1000 + seed)
    mean, std = channel_stats(images)
    model = build_model("fast", (SIZE, SIZE), len(SHAPES), mean, std, widths=(16, 32, 32),
                        init_images=images)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


def shuffled_copy(model, seed: int = 0):
    """The same architecture with each weight tensor's values permuted (seeded)."""
    import keras

    rng = np.random.default_rng(seed)
    copy = keras.models.clone_model(model)
    copy.set_weights([rng.permutation(w.ravel()).reshape(w.shape) for w in model.get_weights()])
    return copy


def baseline_name() -> str:
    from cifarlab.models.registry import model_names

    names = model_names()
    return "baseline" if "baseline" in names else "seed"


@pytest.fixture(scope="module")
def trained():
    return train_pointing_model(seed=0)


@pytest.fixture(scope="module")
def held_out():
    return pointing_data(300, seed=7)


@pytest.mark.slow
def test_pointing_game_trained_model_points_at_the_object(trained, held_out):
    from cifarlab.inference.cam import CamExplainer

    images, labels, boxes = held_out
    explainer = CamExplainer(trained)
    assert explainer.method == "layercam" and [s.size for s in explainer.stages] == [(15, 15), (7, 7)]
    maps, probabilities = explainer.explain(images, labels)
    assert (probabilities.argmax(1) == labels).mean() >= 0.9, "the model did not learn the shapes"
    score = pointing_hits(maps, boxes).mean()
    assert score >= 0.9, f"auto CAM points at the object in only {score:.1%} of images"


@pytest.mark.slow
def test_pointing_game_fails_with_shuffled_weights(trained, held_out):
    from cifarlab.inference.cam import CamExplainer

    images, labels, boxes = held_out
    trained_score = pointing_hits(CamExplainer(trained).explain(images, labels)[0], boxes).mean()
    shuffled_score = pointing_hits(CamExplainer(shuffled_copy(trained)).explain(images, labels)[0], boxes).mean()
    assert shuffled_score < 0.6, f"shuffled weights still point at the object ({shuffled_score:.1%})"
    assert trained_score - shuffled_score > 0.3, f"trained {trained_score:.1%} vs shuffled {shuffled_score:.1%}"


@pytest.mark.slow
def test_class_index_selects_the_object_of_that_class(trained):
    from cifarlab.inference.cam import CamExplainer

    images, labels_a, boxes_a, labels_b, boxes_b = two_object_data(200, seed=11)
    explainer = CamExplainer(trained)
    maps_a, probabilities = explainer.explain(images, labels_a)
    maps_b, probabilities_b = explainer.explain(images, labels_b)
    np.testing.assert_allclose(probabilities, probabilities_b, atol=1e-6)
    assert np.abs(maps_a - maps_b).max(axis=(1, 2)).min() > 0.1, "the class did not change every map"
    own = (pointing_hits(maps_a, boxes_a).mean() + pointing_hits(maps_b, boxes_b).mean()) / 2
    other = (pointing_hits(maps_a, boxes_b).mean() + pointing_hits(maps_b, boxes_a).mean()) / 2
    assert own >= 0.8 and other <= 0.2, f"points at the asked class's object {own:.1%}, at the other {other:.1%}"
    # None = each image's top class; an int applies to all images
    top = probabilities.argmax(1)
    np.testing.assert_allclose(explainer.explain(images[:8])[0], explainer.explain(images[:8], top[:8])[0], atol=1e-6)
    np.testing.assert_allclose(explainer.explain(images[:8], 2)[0], explainer.explain(images[:8], np.full(8, 2))[0],
                               atol=1e-6)


@pytest.mark.slow
def test_maps_shapes_range_and_one_pass_probabilities(trained, held_out):
    from cifarlab.inference.cam import METHODS, CamExplainer

    images = held_out[0][:5]
    expected = trained.predict(images, verbose=0)
    for method in METHODS:
        maps, probabilities = CamExplainer(trained, method).explain(images)
        assert maps.shape == (5, SIZE, SIZE) and maps.dtype == np.float32, method
        assert maps.min() >= 0.0 and maps.max() <= 1.0, method
        np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0, atol=1e-6)  # normalized per image
        assert probabilities.shape == (5, len(SHAPES)) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    maps, probabilities = CamExplainer(trained).explain(images[:0])
    assert maps.shape == (0, SIZE, SIZE) and probabilities.shape == (0, len(SHAPES))


@pytest.mark.slow
def test_plain_cam_equals_gradcam_at_the_global_max_pool(trained, held_out):
    """Behind a global max-pool the logit's gradient is the Dense column at each channel's
    argmax, so its spatial mean is the Dense column / (h*w): Grad-CAM at the last stage and
    plain CAM are the same map, computed two independent ways."""
    from cifarlab.inference.cam import CamExplainer

    images, labels, _ = held_out
    cam = CamExplainer(trained, "cam").explain(images[:20], labels[:20])[0]
    gradcam = CamExplainer(trained, "gradcam", stages=(-1,)).explain(images[:20], labels[:20])[0]
    np.testing.assert_allclose(cam, gradcam, atol=1e-4)


@pytest.mark.slow
def test_feature_stages_know_where_their_cells_sit(trained):
    from cifarlab.inference.cam import feature_stages

    stages = feature_stages(trained)
    # 2x2 valid stem, then three blocks each halving with a 2x2 max-pool (floor)
    assert [s.size for s in stages] == [(31, 31), (15, 15), (7, 7), (3, 3)]
    assert [s.offset for s in stages] == [(0.5, 0.5), (1.0, 1.0), (2.0, 2.0), (4.0, 4.0)]
    assert [s.jump for s in stages] == [(1.0, 1.0), (2.0, 2.0), (4.0, 4.0), (8.0, 8.0)]
    assert all(type(s.layer).__name__ == "GELU" for s in stages)  # block outputs (models/layers.py), not convs


def test_gradcam_and_layercam_on_the_baseline_architecture():
    import keras

    from cifarlab.errors import CifarlabError
    from cifarlab.inference.cam import CamExplainer
    from cifarlab.models.registry import build_model

    keras.utils.set_random_seed(0)
    model = build_model(baseline_name(), (SIZE, SIZE), len(SHAPES), np.full(3, 120.0), np.full(3, 60.0))
    images, _, _ = pointing_data(6, seed=3)
    for method in ("auto", "gradcam", "layercam"):
        maps, probabilities = CamExplainer(model, method).explain(images)
        assert maps.shape == (6, SIZE, SIZE) and maps.dtype == np.float32
        assert 0.0 <= maps.min() and maps.max() <= 1.0
        assert (maps.max(axis=(1, 2)) > 0).all(), f"{method}: a zero map (no gradient reached the features)"
        np.testing.assert_allclose(probabilities, model.predict(images, verbose=0), atol=1e-5)
    with pytest.raises(CifarlabError, match="global-pooling"):
        CamExplainer(model, "cam")  # Flatten -> Dense head: plain CAM does not apply
    auto = CamExplainer(model)
    assert auto.method == "gradcam" and len(auto.stage_names) == 1  # the best measured for this head
    assert auto.stages[0].size == (8, 8)  # stage -2 of 32/16/8/4: the last 4x4 is too coarse


@pytest.mark.slow
def test_bad_inputs_are_clear_errors(trained):
    from cifarlab.errors import CifarlabError
    from cifarlab.inference.cam import CamExplainer

    explainer = CamExplainer(trained)
    with pytest.raises(CifarlabError, match="shape"):
        explainer.explain(np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(CifarlabError, match="uint8"):
        explainer.explain(np.zeros((2, SIZE, SIZE, 3), np.float32))
    with pytest.raises(CifarlabError, match="class_index"):
        explainer.explain(np.zeros((2, SIZE, SIZE, 3), np.uint8), class_index=len(SHAPES))
    with pytest.raises(CifarlabError, match="unknown CAM method"):
        CamExplainer(trained, "saliency")
    with pytest.raises(CifarlabError, match="out of range"):
        CamExplainer(trained, "layercam", stages=(-9,))


def test_resize_map_and_overlay_heatmap():
    from cifarlab.inference.cam import overlay_heatmap, resize_map

    cam = np.zeros((32, 32), np.float32)
    cam[8:12, 20:24] = 1.0
    big = resize_map(cam, (96, 64))
    assert big.shape == (96, 64) and big.dtype == np.float32
    assert big.min() >= 0.0 and big.max() <= 1.0
    peak_row, peak_col = np.unravel_index(big.argmax(), big.shape)
    assert 24 <= peak_row < 36 and 40 <= peak_col < 48  # same place, scaled (3x rows, 2x cols)

    image = np.full((96, 64, 3), 100, np.uint8)
    out = overlay_heatmap(image, big)
    assert out.shape == image.shape and out.dtype == np.uint8
    hot, cold = out[30, 44], out[80, 5]
    assert hot[0] > hot[2] and cold[2] > cold[0]  # JET: red where the map is 1, blue where 0
    np.testing.assert_array_equal(overlay_heatmap(image, big, alpha=0.0), image)
    assert overlay_heatmap(image, cam).shape == image.shape  # the map is resized to the image
