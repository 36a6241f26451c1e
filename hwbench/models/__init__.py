"""Plain-PyTorch model zoo: DeepLabv3+ on five backbones and the ResNet / MobileNetV3 classifiers.

    create_model(name, *, num_classes=None, output_stride=None, **kw) -> nn.Module
    list_models(task=None) -> list[str]
    model_info(name) -> ModelInfo(name, label, task, family, num_classes, default_input, output_stride)
    load_weights(model, path) -> model
"""

from __future__ import annotations

from hwbench.models.registry import MODELS, ModelInfo, create_model, list_models, model_info, register_model
from hwbench.models.weights import load_weights

__all__ = ["MODELS", "ModelInfo", "create_model", "list_models", "load_weights", "model_info",
           "register_model"]
