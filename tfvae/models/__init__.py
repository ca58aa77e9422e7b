"""Model variants, one module each; importing this package registers all."""

import importlib
import pkgutil

from tfvae.models.registry import build, get, names  # pylint: disable=unused-import

for _module in pkgutil.iter_modules(__path__):
  if _module.name != "registry":
    importlib.import_module(f"{__name__}.{_module.name}")
