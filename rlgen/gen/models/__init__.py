"""Image models; importing this package registers each model's config by its kind."""
from rlgen.gen.base import ModelConfig
from rlgen.gen.models import dcgan, improved_gan, infogan  # noqa: F401
from rlgen.gen.models import pixelcnn, pixelrnn, vae  # noqa: F401


def model_kinds() -> dict[str, type[ModelConfig]]:
    """Registered image-model configs by kind: every model in this package."""
    return ModelConfig.variants()
