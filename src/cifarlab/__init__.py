"""cifarlab: train, evaluate, export and run small-image classifiers live on a camera.

`cifarlab.load`, `cifarlab.train` and `cifarlab.evaluate` are the Python API (`cifarlab.api`),
imported on first use: `import cifarlab` imports neither TensorFlow nor Keras. Once it has run,
plain Keras reads cifarlab's model files: its layers are registered when Keras is imported.
"""

import warnings

from cifarlab.imports import after_keras

__version__ = "0.1.0"

RUNS_DIR = "runs"  # where training runs and evaluations go by default (relative to the working folder)
_API = ("load", "train", "evaluate", "Model", "Run")  # `cifarlab.api`, imported on first use


def __getattr__(name: str):
    if name in _API:
        from cifarlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'cifarlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


def _register_keras_objects() -> None:
    try:
        from cifarlab.api import register_keras_objects

        register_keras_objects()
    except Exception as exc:  # `import keras` must not fail because of us
        warnings.warn(f"cifarlab could not register its Keras layers ({exc.__class__.__name__}: "
                      f"{exc}); import cifarlab.api and call register_keras_objects()", stacklevel=2)


after_keras(_register_keras_objects)
