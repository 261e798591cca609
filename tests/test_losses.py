"""The distillation loss: zero at agreement, T^2-scaled, and mixed with hard labels on request."""
import torch
import torch.nn.functional as F

from bdcore.losses import distillation_loss, finetune_loss


def test_zero_when_student_equals_teacher():
    logits = torch.randn(16, 10)
    assert distillation_loss(logits, logits.clone(), 20.0).abs().item() < 1e-6


def test_positive_when_they_differ():
    assert distillation_loss(torch.randn(16, 10), torch.randn(16, 10), 4.0).item() > 0


def test_scaled_by_temperature_squared():
    s, t = torch.randn(32, 10), torch.randn(32, 10)
    for temperature in (1.0, 4.0, 20.0):
        p_t = F.softmax(t / temperature, 1)
        kl = (p_t * (p_t.log() - F.log_softmax(s / temperature, 1))).sum(1).mean()
        expected = kl * temperature ** 2
        assert torch.allclose(distillation_loss(s, t, temperature), expected, rtol=1e-4)


def test_gradient_magnitude_stays_comparable_across_temperatures():
    """The T^2 factor keeps soft-target gradients from vanishing as T grows (Hinton et al.)."""
    torch.manual_seed(0)
    t = torch.randn(64, 10) * 3
    norms = []
    for temperature in (5.0, 20.0):
        s = torch.zeros(64, 10, requires_grad=True)
        distillation_loss(s, t, temperature).backward()
        norms.append(s.grad.norm().item())
    assert 0.1 < norms[1] / norms[0] < 1.5


def test_finetune_loss_mixes_hard_labels():
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    soft = distillation_loss(s, t, 4.0)
    hard = F.cross_entropy(s, y)
    assert torch.allclose(finetune_loss(s, t, y, 4.0, 0.0), soft)
    assert torch.allclose(finetune_loss(s, t, y, 4.0, 1.0), hard)
    assert torch.allclose(finetune_loss(s, t, y, 4.0, 0.25), 0.75 * soft + 0.25 * hard)
