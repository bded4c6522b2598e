"""Image models; importing this package registers each model's config by its kind."""
from rlgen.gen.models import dcgan, improved_gan, infogan  # noqa: F401
from rlgen.gen.models import pixelcnn, pixelrnn, vae  # noqa: F401
