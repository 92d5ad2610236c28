"""Write a `.keras` model as LiteRT (float, dynamic or int8), ONNX or a SavedModel, each checked
against the Keras model (`parity`) and carrying its `ModelMetadata` beside it."""
