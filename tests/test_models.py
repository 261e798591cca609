"""Model registry: every architecture builds for grey and colour inputs, with the paper's sizes."""
import pytest
import torch

from bdcore.models import MODELS, build_model, classifier_layer, count_parameters


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
