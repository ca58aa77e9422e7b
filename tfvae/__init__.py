"""tfvae: Variational Autoencoders in TensorFlow 2, Keras 3 and TFP.

The Python API (see `tfvae.api`):

```python
import tfvae

config = tfvae.config_from_flagfile("configs/quickstart.flags", epochs=1)
result = tfvae.train_and_evaluate(config)   # train, evaluate, export
model = tfvae.load(result.export.version_dir)
codes = model.encode(x)["mean"]
```

Names are resolved lazily (PEP 562), so `import tfvae` imports neither
TensorFlow nor TensorFlow Probability; each is imported when first needed.
"""

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "RunConfig": "tfvae.config",
    "DataConfig": "tfvae.config",
    "ModelConfig": "tfvae.config",
    "TrainConfig": "tfvae.config",
    "EvalConfig": "tfvae.config",
    "ExportConfig": "tfvae.config",
    "config_from_flagfile": "tfvae.api",
    "train_and_evaluate": "tfvae.api",
    "TrainResult": "tfvae.api",
    "load": "tfvae.api",
    "TfvaeError": "tfvae.errors",
}
_SUBPACKAGES = ("data",)

__all__ = sorted(_EXPORTS) + list(_SUBPACKAGES) + ["__version__"]


def __getattr__(name):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
  elif name in _SUBPACKAGES:
    value = importlib.import_module(f"{__name__}.{name}")
  else:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  globals()[name] = value  # Later lookups skip __getattr__.
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
