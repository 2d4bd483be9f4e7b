"""Stub for tensorflow (not installable here).

Imported at module level by fedscale/utils/models/tensorflow_model_provider.py
(via fllibs.py), fedscale/cloud/internal/tensorflow_model_adapter.py and
fedscale/cloud/execution/tensorflow_client.py; used only with
--engine tensorflow / --model_zoo fedscale-tensorflow-zoo. Two names are
evaluated while those modules load, so they exist here as classes that
refuse to be instantiated:
  - tf.keras.metrics.Metric (base class of RowCount in tensorflow_model_provider)
  - tf.keras.Model (an annotation in TensorflowModelAdapter.__init__)
Anything else raises StubUsedError.
"""
import types

from _poison import StubUsedError, poison_getattr

__getattr__ = poison_getattr("tensorflow")


class _Refuse:
    def __init__(self, *args, **kwargs):
        raise StubUsedError(f"stub tensorflow: {type(self).__name__} was instantiated")


class Metric(_Refuse):
    pass


class Model(_Refuse):
    pass


metrics = types.ModuleType("tensorflow.keras.metrics")
metrics.Metric = Metric
metrics.__getattr__ = poison_getattr("tensorflow.keras.metrics")
keras = types.ModuleType("tensorflow.keras")
keras.Model = Model
keras.metrics = metrics
keras.__getattr__ = poison_getattr("tensorflow.keras")
