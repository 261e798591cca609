"""Model registry: every architecture builds for grey and colour inputs, with the paper's sizes;
MobileNetV2 from 32 to 224 pixels, and training in bdcore's loop with crops and flips."""
import math

import pytest
import torch
from torch import nn

from bdcore.models import MODELS, build_model, classifier_layer, count_parameters
from bdcore.stage_settings import StageSettings
from bdcore.train import fit


def test_paper_parameter_counts():
    assert count_parameters(build_model("mlp", (1, 28, 28), 10)) == 84_060
    assert count_parameters(build_model("cnn", (1, 28, 28), 10)) == 1_120_468


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape,classes", [((1, 28, 28), 10), ((3, 32, 32), 100)])
def test_every_model_maps_inputs_to_class_logits(name, shape, classes):
    model = build_model(name, shape, classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert out.shape == (2, classes)
    caught = []
    classifier_layer(model).register_forward_hook(lambda _m, inputs, _out: caught.append(inputs[0]))
    with torch.no_grad():
        model(torch.randn(2, *shape))
    [features] = caught  # the penultimate features: what the classifier layer reads
    assert features.ndim == 2 and features.shape == (2, classifier_layer(model).in_features)


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="mlp, cnn, cnn6, mobilenet_v2"):
        build_model("resnet", (1, 28, 28), 10)


def test_mobilenet_is_randomly_initialised_without_download(monkeypatch):
    monkeypatch.setattr("torch.hub.load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("tried to download weights"))
    a = build_model("mobilenet_v2", (3, 32, 32), 10)
    torch.manual_seed(1)
    b = build_model("mobilenet_v2", (3, 32, 32), 10)
    assert not torch.equal(a.classifier[-1].weight, b.classifier[-1].weight)


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [32, 96, 224])
def test_mobilenet_builds_channels_last_for_grey_and_colour_from_32_to_224_pixels(channels, size):
    model = build_model("mobilenet_v2", (channels, size, size), 256)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.ndim == 4)
    with torch.no_grad():
        out = model.eval()(torch.randn(2, channels, size, size).contiguous(memory_format=torch.channels_last))
    assert out.shape == (2, 256)


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
def test_mobilenet_trains_channels_last_with_crops_and_flips(channels):
    """Two steps of bdcore's loop at 64 pixels, batch 4: the batches are cropped and flipped,
    reach the model channels-last, and move every layer's weights."""
    x, y = torch.randn(8, channels, 64, 64), torch.arange(8) % 2
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", (channels, 64, 64), 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0]) if model.training else None)
    settings = StageSettings(1, 1e-3, 4, augment=True, augment_kind="crop_flip")
    [report] = fit(model, x, lambda out, i, _x: nn.functional.cross_entropy(out.float(), y[i]), x, y,
                   settings, stage="teacher", seed=0, amp=False)
    assert len(seen) == 2 and all(b.is_contiguous(memory_format=torch.channels_last) for b in seen)
    distance = torch.cdist(torch.cat(seen).flatten(1), x.flatten(1))
    assert distance.min() > 1.0  # every image was cropped or flipped
    assert math.isfinite(report.train_loss)
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
