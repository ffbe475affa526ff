"""Where model weights come from: `embedded:<name>` sources become a local HF checkpoint."""

from rayvllm.models.embedded import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    EmbeddedModelError,
    checkpoint_dir,
    ensure_checkpoint,
    resolve_source,
)

__all__ = [
    "EMBEDDED_MODELS",
    "EmbeddedModel",
    "EmbeddedModelError",
    "checkpoint_dir",
    "ensure_checkpoint",
    "resolve_source",
]
