"""Shared fixtures: the shared CIFAR-10 copy, small generated datasets, a tiny trained model and
a local HTTP server. Shared functions (not fixtures) are in tests/helpers/."""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.images import write_image_folder
from helpers.paths import SHARED_CIFAR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own dataset cache, never the user's."""
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def shared_cifar() -> Path:
    if not SHARED_CIFAR.is_dir():
        pytest.skip(f"{SHARED_CIFAR} is absent (CI provides ../shared/datasets)")
    return SHARED_CIFAR


@pytest.fixture(scope="session")
def cifar_sample(shared_cifar, tmp_path_factory) -> Path:
    """ROOT/<train|test>/<class>/: the first 300 training and 100 test images of each class of the
    shared copy (symlinks): CIFAR-10 photos that decode in a second."""
    root = tmp_path_factory.mktemp("cifar-sample")
    for split, count in (("train", 300), ("test", 100)):
        for folder in sorted(p for p in (shared_cifar / split).iterdir() if p.is_dir()):
            (root / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:count]:
                (root / split / folder.name / image.name).symlink_to(image)
    return root


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("shapes"), {"train": 300, "test": 90})


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, shapes_folder) -> Path:
    """A small `fast`-architecture model trained a few seconds on the shapes data (32x32)."""
    import keras

    from cifarlab.data import load_dataset
    from cifarlab.data.stats import channel_stats
    from cifarlab.models.io import save_model_file
    from cifarlab.models.metadata import ModelMetadata
    from cifarlab.models.registry import build_model

    keras.utils.set_random_seed(0)
    data = load_dataset(shapes_folder, image_size=32, cache_dir=tmp_path_factory.mktemp("c"))
    train = data.split("train")
    mean, std = channel_stats(train.images)
    model = build_model("fast", (32, 32), 3, mean, std, widths=(16, 32, 32),
                        init_images=train.images)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train.images, train.labels, epochs=8, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return save_model_file(model, path, ModelMetadata(
        class_names=tuple(data.class_names), input_size=(32, 32), mean=tuple(mean.tolist()),
        std=tuple(std.tolist()), dataset_fingerprint=data.fingerprint, dataset_format=data.format,
        model="fast", command="tests/conftest.py tiny_model", version="test", created="test"))


@pytest.fixture(scope="session")
def open_model(tmp_path_factory, tiny_model, shapes_folder) -> Path:
    """`tiny_model` with the open-set output (ood_score) and its threshold in the metadata, fitted
    on the shapes training images (the small-validation rule: the data has no val split)."""
    from cifarlab.data import load_dataset
    from cifarlab.models.io import load_keras_model, save_model_file
    from cifarlab.training.openset import add_open_set

    model, meta = load_keras_model(tiny_model)
    data = load_dataset(shapes_folder, image_size=32, cache_dir=tmp_path_factory.mktemp("c"))
    scored, record = add_open_set(model, data.split("train"), None, meta.num_classes)
    path = tmp_path_factory.mktemp("open-model") / "tiny-open.keras"
    return save_model_file(scored, path, meta.with_changes(open_set=record))


@pytest.fixture()
def server():
    """A local HTTP server; set `server.routes[path] = (body, content_length_or_None)`."""
    routes: dict[str, tuple[bytes, int | None]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            if self.path not in routes:
                self.send_error(404, "not here")
                return
            body, length = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)  # then the connection closes (HTTP/1.0)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.routes = routes
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def cifar10_mirror(server, tmp_path, monkeypatch):
    """`serve(per_batch=3) -> archive bytes`: a fake CIFAR-10 archive (helpers.cifar) served over
    loopback as the official one (its URL and MD5 set in the environment), into an empty cache."""
    from helpers.cifar import PER_BATCH, make_cifar10_python

    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CIFARLAB_DOWNLOAD_URL", server.base + "/")

    def serve(per_batch: int = PER_BATCH) -> bytes:
        archive, _ = make_cifar10_python(tmp_path / f"mirror-{per_batch}", True, per_batch)
        blob = archive.read_bytes()
        server.routes["/cifar-10-python.tar.gz"] = (blob, None)
        monkeypatch.setenv("CIFARLAB_DOWNLOAD_MD5", hashlib.md5(blob).hexdigest())
        return blob

    serve.server = server
    return serve


@pytest.fixture(scope="module")
def images():
    """Smooth natural-looking 32x32 images for the corruption tests (helpers.corruption_refs)."""
    from helpers.corruption_refs import natural_images

    return natural_images()
