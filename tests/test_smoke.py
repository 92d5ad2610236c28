
from cifarlab.inference import open_classifier


def test_tiny_model_learns_shapes(tiny_model, shapes_folder):
    from cifarlab.data import load_dataset

    clf = open_classifier(tiny_model)
    test = load_dataset(shapes_folder, image_size=32).split("test")
    accuracy = (clf.predict(test.images).argmax(1) == test.labels).mean()
    assert clf.class_names == ["circle", "square", "triangle"]
    assert accuracy > 0.6, accuracy
