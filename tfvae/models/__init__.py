"""Model variants; importing this package registers all of them."""

from tfvae.models import beta_vae  # pylint: disable=unused-import
from tfvae.models import vae  # pylint: disable=unused-import
from tfvae.models.registry import build, get, names  # pylint: disable=unused-import
