"""The names of an :class:`~emo.pipelines.emo_pipeline.EMOPipeline`'s components.

The pipeline, its persistence and its builders all iterate over these names;
they live here, below all three, so none has to import another for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["MODEL_COMPONENTS", "PLUGIN_COMPONENTS"]

#: Network components (``emo.modeling.ModelMixin`` instances).
MODEL_COMPONENTS = ("vae", "reference_net", "backbone", "face_locator", "audio_projection")
#: Plugin components and their plugin kind.
PLUGIN_COMPONENTS: Mapping[str, str] = MappingProxyType(
    {
        "audio_encoder": "audio_encoder",
        "scheduler": "scheduler",
        "face_mask": "face_mask",
    }
)
