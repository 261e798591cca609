"""Model registry: each entry builds an architecture for an input shape and a class count."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .errors import ConfigError

InputShape = tuple[int, int, int]  # (channels, height, width)


def mlp(input_shape: InputShape, num_classes: int) -> nn.Module:
    """The paper's MLP: three fully connected layers (784-100-50-10 has 84,060 parameters)."""
    c, h, w = input_shape
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, 100), nn.ReLU(),
        nn.Linear(100, 50), nn.ReLU(),
        nn.Linear(50, num_classes),
    )


def cnn(input_shape: InputShape, num_classes: int) -> nn.Module:
    """The paper's CNN: two 3x3 conv layers with batch-norm and max-pooling, then fc 350 and the
    classifier (1,120,468 parameters at 28x28x1)."""
    c, h, w = input_shape
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (h // 4) * (w // 4), 350), nn.ReLU(),
        nn.Linear(350, num_classes),
    )


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def cnn6(input_shape: InputShape, num_classes: int) -> nn.Module:
    """The paper's CIFAR model: six conv layers in three blocks with batch-norm and dropout, and
    one classifier layer."""
    c, h, w = input_shape
    return nn.Sequential(
        *_conv_bn(c, 32), *_conv_bn(32, 32), nn.MaxPool2d(2), nn.Dropout(0.2),
        *_conv_bn(32, 64), *_conv_bn(64, 64), nn.MaxPool2d(2), nn.Dropout(0.3),
        *_conv_bn(64, 128), *_conv_bn(128, 128), nn.MaxPool2d(2), nn.Dropout(0.4),
        nn.Flatten(),
        nn.Linear(128 * (h // 8) * (w // 8), num_classes),
    )


def mobilenet_v2(input_shape: InputShape, num_classes: int) -> nn.Module:
    """torchvision's MobileNetV2, randomly initialised (never downloads weights)."""
    from torchvision.models import mobilenet_v2 as tv_mobilenet_v2

    model = tv_mobilenet_v2(weights=None, num_classes=num_classes)
    c = input_shape[0]
    if c != 3:
        first = model.features[0][0]
        model.features[0][0] = nn.Conv2d(c, first.out_channels, 3, stride=2, padding=1, bias=False)
    return model


MODELS: dict[str, Callable[[InputShape, int], nn.Module]] = {
    "mlp": mlp,
    "cnn": cnn,
    "cnn6": cnn6,
    "mobilenet_v2": mobilenet_v2,
}


def build_model(name: str, input_shape: InputShape, num_classes: int) -> nn.Module:
    """Build a registered architecture; unknown names raise a ConfigError listing the choices."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    model = MODELS[name](input_shape, num_classes)
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        # channels-last weights: faster convolutions in bf16 (docs/performance.md, bf16 + channels-last)
        model = model.to(memory_format=torch.channels_last)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The model's last nn.Linear: its input is what the project calls the penultimate features
    (the explorer catches it with a forward hook, so any registered architecture works)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise TypeError(f"{type(model).__name__} has no nn.Linear classifier layer")
    return layers[-1]
