"""The three stages on tiny tensors: blindness, stratified sampling, augmentation, repeatability."""
import pytest
import torch
from torch import nn

from bdcore import stages
from bdcore.augment import (
    Augmentation,
    add_input_noise,
    batch_augment,
    random_affine,
    random_resized_crop_flip,
)
from bdcore.losses import finetune_loss
from bdcore.models import build_model
from bdcore.stage_names import finetune_stage
from bdcore.stage_settings import StageSettings
from bdcore.stages import blind_distill, finetune, stratified_subset, train_teacher
from bdcore.train import EpochState, fit


def toy_problem(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    x[torch.arange(n), 0, y * 2, :] += 3.0  # class c lights row 2c
    return x, y


class Recorder(nn.Module):
    """Wraps a model and keeps every input it sees while gradients flow (i.e. in training), or
    every input at all with ``training_only=False``."""

    def __init__(self, model, training_only=True):
        super().__init__()
        self.model, self.seen, self.training_only = model, [], training_only

    def forward(self, x):
        if not self.training_only or (torch.is_grad_enabled() and self.training):
            self.seen.append(x.detach().clone())
        return self.model(x)


def rows_in(batch: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    flat_b, flat_p = batch.flatten(1), pool.flatten(1)
    return (torch.cdist(flat_b, flat_p, compute_mode="donot_use_mm_for_euclid_dist") < 1e-5).any(1)


def test_blind_student_never_sees_a_labeled_image():
    train_x, train_y = toy_problem(seed=0)
    unlabeled_x, _ = toy_problem(seed=1)
    unlabeled_x = unlabeled_x + 10.0  # disjoint from every labeled image
    teacher = build_model("mlp", (1, 8, 8), 4)
    train_teacher(teacher, train_x, train_y, train_x, train_y, StageSettings(2, 1e-2, 64), seed=0)
    student = Recorder(build_model("mlp", (1, 8, 8), 4))
    blind_distill(student, teacher, unlabeled_x, train_x, train_y, StageSettings(2, 1e-2, 64),
                  temperature=20, seed=0)
    seen = torch.cat(student.seen)
    assert len(seen) == 2 * len(unlabeled_x)  # two epochs over the unlabeled set, nothing else
    assert rows_in(seen, unlabeled_x).all()
    assert not rows_in(seen, train_x).any()


def test_blind_distillation_transfers_the_teacher():
    x, y = toy_problem(512)
    teacher = build_model("mlp", (1, 8, 8), 4)
    train_teacher(teacher, x, y, x, y, StageSettings(5, 1e-2, 64), seed=0)
    student = build_model("mlp", (1, 8, 8), 4)
    reports = blind_distill(student, teacher, x + 0.1 * torch.randn_like(x), x, y,
                            StageSettings(5, 1e-2, 64), temperature=4, seed=0)
    assert reports[-1].test_acc > 0.9
    assert [r.epoch for r in reports] == [1, 2, 3, 4, 5]


def test_stratified_subset_takes_k_per_class_and_is_seeded():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 5)
    picked = stratified_subset(labels, 10, seed=3)
    counts = labels[picked].bincount().tolist()
    assert counts == [10, 10, 5]  # a small class gives all it has
    assert torch.equal(picked, stratified_subset(labels, 10, seed=3))
    assert not torch.equal(picked, stratified_subset(labels, 10, seed=4))
    assert len(picked.unique()) == len(picked)
    assert torch.equal(stratified_subset(labels, None, seed=0), torch.arange(len(labels)))


def test_finetune_uses_only_the_k_subset():
    x, y = toy_problem(400)
    teacher = build_model("mlp", (1, 8, 8), 4)
    train_teacher(teacher, x, y, x, y, StageSettings(2, 1e-2, 64), seed=0)
    student = Recorder(build_model("mlp", (1, 8, 8), 4))
    reports = finetune(student, teacher, x, y, x, y, StageSettings(3, 1e-3, 16), per_class=5,
                       temperature=4, hard_label_weight=0.5, seed=0, stage=finetune_stage(5))
    seen = torch.cat(student.seen)
    allowed = x[stratified_subset(y, 5, seed=0)]
    assert len(seen) == 3 * 20 and rows_in(seen, allowed).all()
    assert reports[-1].stage == "finetune-k5"


def dot_images(n=64, size=31):
    x = torch.zeros(n, 1, size, size)
    x[:, 0, size // 2, size // 2] = 1.0
    return x


def dot_spread(images: torch.Tensor) -> int:
    """How far the brightest pixel moved from the centre, at most, over a batch of dot images."""
    size = images.shape[-1]
    peaks = images[:, 0].flatten(1).argmax(1)
    return int(torch.maximum((peaks // size - size // 2).abs(), (peaks % size - size // 2).abs()).max())


def test_random_affine_moves_each_image_a_little_and_repeats_with_a_seed():
    x = dot_images(64, 15)
    moved = random_affine(x, torch.Generator().manual_seed(0))
    assert moved.shape == x.shape
    assert dot_spread(moved) <= 3  # shift 2 + rounding
    peaks = moved[:, 0].flatten(1).argmax(1)
    assert len(set(peaks.tolist())) > 5  # each image gets its own distortion
    again = random_affine(x, torch.Generator().manual_seed(0))
    assert torch.equal(moved, again)


def test_random_affine_with_zero_ranges_is_the_identity():
    x = torch.randn(8, 3, 12, 12)
    still = random_affine(x, torch.Generator().manual_seed(0), Augmentation(0.0, 0.0, 0.0))
    assert torch.allclose(still, x, atol=1e-5)


def test_augmentation_strength_scales_rotation_and_zoom_and_shift_by_its_root():
    assert Augmentation().scaled(4) == Augmentation(40.0, 0.4, 4.0)
    assert Augmentation().scaled(1) == Augmentation()


def ramps(n: int = 256, h: int = 24, w: int = 40) -> torch.Tensor:
    """Images whose channel 0 is each pixel's column and channel 1 its row: every value of a
    resampled image says where in the original it was read (bilinear keeps a ramp exact)."""
    cols = torch.arange(w, dtype=torch.float32).expand(h, w)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    return torch.stack([cols, rows]).expand(n, 2, h, w).clone()


def crop_boxes(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each image's crop box, read from resampled ramps: its width and height as fractions of the
    image's, and whether it was mirrored."""
    h, w = images.shape[-2:]
    cols, rows = images[:, 0], images[:, 1]
    width = (cols[:, :, -1] - cols[:, :, 0]).abs().mean(1) / (w - 1)
    height = (rows[:, -1, :] - rows[:, 0, :]).mean(1) / (h - 1)
    return width, height, cols[:, 0, -1] < cols[:, 0, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_crop_flip_keeps_shape_and_dtype(dtype):
    x = torch.randn(4, 3, 32, 32, dtype=dtype)
    out = random_resized_crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype


@pytest.mark.parametrize("shape", [(8, 3, 12, 12), (8, 1, 12, 20)])
def test_crop_flip_of_the_whole_image_is_the_identity_or_its_mirror(shape):
    x = torch.randn(shape)
    g = torch.Generator().manual_seed(0)
    whole = random_resized_crop_flip(x, g, scale=(1.0, 1.0), flip_prob=0.0)
    assert torch.allclose(whole, x, atol=1e-5)
    mirrored = random_resized_crop_flip(x, g, scale=(1.0, 1.0), flip_prob=1.0)
    assert torch.allclose(mirrored, x.flip(-1), atol=1e-5)


def test_crop_flip_mirrors_about_half_the_images():
    x = ramps(400)
    out = random_resized_crop_flip(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0))
    _, _, mirrored = crop_boxes(out)
    assert 0.4 < mirrored.float().mean() < 0.6
    expected = torch.where(mirrored[:, None, None, None], x.flip(-1), x)
    assert torch.allclose(out, expected, atol=1e-4)


def test_crop_flip_repeats_with_a_seed():
    x = torch.randn(16, 3, 20, 20)
    first = random_resized_crop_flip(x, torch.Generator().manual_seed(3))
    assert torch.equal(first, random_resized_crop_flip(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, random_resized_crop_flip(x, torch.Generator().manual_seed(4)))


def test_crop_flip_crops_boxes_of_the_asked_area_and_aspect_inside_the_image():
    x = ramps(512, h=24, w=40)  # not square: the aspect ratio is the box's in pixels
    out = random_resized_crop_flip(x, torch.Generator().manual_seed(0))
    width, height, _ = crop_boxes(out)
    area, aspect = width * height, (width * 40) / (height * 24)
    assert area.min() > 0.35 - 1e-3 and area.max() < 1 + 1e-3
    assert area.min() < 0.4 and area.max() > 0.95 and width.max() < 1 + 1e-3  # the whole range, no more
    # a 5:3 image's large boxes cannot be 4:3 or narrower: those span its whole height instead
    asked = (aspect > 3 / 4 - 1e-3) & (aspect < 4 / 3 + 1e-3)
    assert (asked | (height > 1 - 1e-3)).all() and asked.float().mean() > 0.5
    assert out.min() > -1e-3 and out[:, 0].max() < 39 + 1e-3 and out[:, 1].max() < 23 + 1e-3  # inside
    left_edges = out[:, 0].amin((1, 2))
    assert left_edges.max() > 10  # boxes start all over the image, not only at its corner
    assert len(out.flatten(1).unique(dim=0)) == len(out)  # each image its own box


def test_crop_flip_strength_widens_the_area_and_aspect_ranges():
    x = ramps(512, h=32, w=32)
    for strength, smallest in ((1.0, 0.35), (2.0, 0.35 ** 2)):
        augment = batch_augment("crop_flip", strength)
        width, height, _ = crop_boxes(augment(x, torch.Generator().manual_seed(0)))
        area = width * height
        assert smallest - 1e-3 < area.min() < smallest + 0.05
        assert (width / height).max() < (4 / 3) ** strength + 1e-3
    assert (width / height).max() > 4 / 3 + 0.1  # strength 2 reaches beyond 4:3


def test_affine_kind_is_random_affine_at_the_scaled_ranges():
    x = torch.randn(8, 1, 16, 16)
    assert torch.equal(batch_augment("affine", 3.0)(x, torch.Generator().manual_seed(0)),
                       random_affine(x, torch.Generator().manual_seed(0), Augmentation().scaled(3.0)))
    with pytest.raises(ValueError, match="choose one of affine, crop_flip"):
        batch_augment("rotate")


def seen_by_fit(x: torch.Tensor, settings: StageSettings) -> torch.Tensor:
    model = Recorder(build_model("mlp", tuple(x.shape[1:]), 4))

    def loss(logits, _index, _x):
        return logits.float().pow(2).mean()

    fit(model, x, loss, x[:4], torch.zeros(4, dtype=torch.long), settings, stage="t", seed=0)
    return torch.cat(model.seen)


def test_fit_distorts_more_at_a_higher_strength():
    x = dot_images()
    plain = seen_by_fit(x, StageSettings(1, 1e-3, 16, augment=True))
    strong = seen_by_fit(x, StageSettings(1, 1e-3, 16, augment=True, augment_strength=4.0))
    assert 0 < dot_spread(plain) < dot_spread(strong)


def test_fit_crops_and_flips_when_told_to():
    x = ramps(64, 16, 16)
    width, height, mirrored = crop_boxes(seen_by_fit(x, StageSettings(1, 1e-3, 16, augment=True,
                                                                      augment_kind="crop_flip")))
    assert (width * height).min() < 0.6 and 0 < mirrored.sum() < 64
    unaugmented = StageSettings(1, 1e-3, 16, augment=False, augment_kind="crop_flip")
    assert torch.equal(seen_by_fit(x, unaugmented), x)  # the kind alone changes nothing


def test_input_noise_is_seeded_gaussian_of_the_given_std():
    x = torch.zeros(200, 1, 28, 28)
    noisy = add_input_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert abs(noisy.std().item() - 0.5) < 0.01 and abs(noisy.mean().item()) < 0.01
    assert torch.equal(noisy, add_input_noise(x, 0.5, torch.Generator().manual_seed(0)))


def test_the_teacher_trains_on_noisy_images_when_asked():
    x, y = toy_problem(64)
    for noise in (0.0, 0.3):
        teacher = Recorder(build_model("mlp", (1, 8, 8), 4))
        train_teacher(teacher, x, y, x, y, StageSettings(1, 1e-2, 16, input_noise=noise), seed=0)
        seen = torch.cat(teacher.seen)
        assert len(seen) == len(x)
        if noise:
            assert not rows_in(seen, x).any()
        else:
            assert rows_in(seen, x).all()


def test_noisy_or_distorted_batches_get_fresh_teacher_logits():
    """With input noise (or distortions) the teacher must score the very batch the student sees."""
    x, _ = toy_problem(64)
    for settings in (StageSettings(1, 1e-2, 16, input_noise=0.3),
                     StageSettings(1, 1e-2, 16, augment=True, augment_strength=2.0)):
        teacher = Recorder(build_model("mlp", (1, 8, 8), 4), training_only=False).eval()
        student = Recorder(build_model("mlp", (1, 8, 8), 4))
        blind_distill(student, teacher, x, x, torch.zeros(64, dtype=torch.long), settings,
                      temperature=4, seed=0)
        assert settings.perturbs_inputs
        student_batches = torch.cat(student.seen)
        assert not rows_in(student_batches, x).any()  # every batch was perturbed
        assert torch.equal(torch.cat(teacher.seen), student_batches)
    assert not StageSettings(1, 1e-2).perturbs_inputs


def test_finetune_scores_distorted_batches_against_the_teachers_clean_logits_unless_fresh():
    x, y = toy_problem(64)
    settings = StageSettings(1, 1e-2, 16, augment=True)
    for fresh in (False, True):
        teacher = Recorder(build_model("mlp", (1, 8, 8), 4), training_only=False).eval()
        student = Recorder(build_model("mlp", (1, 8, 8), 4))
        finetune(student, teacher, x, y, x, y, settings, per_class=None, temperature=4,
                 hard_label_weight=0.5, seed=0, stage=finetune_stage(None), fresh_teacher=fresh)
        taught, student_batches = torch.cat(teacher.seen), torch.cat(student.seen)
        assert not rows_in(student_batches, x).any()
        if fresh:
            assert torch.equal(taught, student_batches)
        else:  # one pass over the undistorted subset
            assert len(taught) == len(x) and rows_in(taught, x).all()


def test_cached_finetune_logits_line_up_with_their_images_for_small_k(monkeypatch):
    """Cached logits are looked up by batch index into the k-subset: with a teacher that is right
    on every undistorted image, every batch's targets agree with its labels."""
    class RowTeacher(nn.Module):
        def forward(self, x):
            return x[:, 0, ::2, :].sum(-1) * 3  # class c lights row 2c

    x, y = toy_problem(256)
    agreement = []

    def spy(logits, targets, labels, *args):
        agreement.append((targets.argmax(1) == labels).float().mean().item())
        return finetune_loss(logits, targets, labels, *args)

    monkeypatch.setattr(stages, "finetune_loss", spy)
    finetune(build_model("mlp", (1, 8, 8), 4), RowTeacher(), x, y, x, y,
             StageSettings(2, 1e-2, 4, augment=True), per_class=3, temperature=4,
             hard_label_weight=0.5, seed=0, stage=finetune_stage(3), fresh_teacher=False)
    assert len(agreement) == 2 * 3 and min(agreement) == 1.0


def test_same_seed_repeats_a_run():
    x, y = toy_problem()

    def once():
        torch.manual_seed(0)
        model = build_model("cnn", (1, 8, 8), 4)
        reports = fit(model, x, lambda out, i, _x: nn.functional.cross_entropy(out.float(), y[i]),
                      x, y, StageSettings(2, 1e-3, 32, augment=True), stage="t", seed=5)
        return [r.train_loss for r in reports], model.state_dict()

    (loss_a, state_a), (loss_b, state_b) = once(), once()
    assert loss_a == loss_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


@pytest.mark.slow
def test_compiled_training_step_learns_like_the_eager_one():
    x, y = toy_problem()

    def run(compiled):
        torch.manual_seed(0)
        model = build_model("cnn", (1, 8, 8), 4)
        settings = StageSettings(3, 3e-3, 32, compile=compiled)
        return fit(model, x, lambda out, i, _x: nn.functional.cross_entropy(out.float(), y[i]),
                   x, y, settings, stage="t", seed=5)[-1].test_acc

    assert run(True) >= run(False) - 0.05


def test_resume_state_from_another_device_kind_reseeds_instead_of_failing():
    model = build_model("mlp", (1, 8, 8), 4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    state = EpochState(model, opt, sched, torch.Generator().manual_seed(0)).state_dict()
    cuda_like = torch.arange(16, dtype=torch.uint8)  # a CUDA generator's state is 16 bytes
    resumed = [EpochState(model, opt, sched, torch.Generator()) for _ in range(2)]
    for target in resumed:
        target.load_state_dict({**state, "generator": cuda_like})
    draws = [torch.rand(3, generator=r.generator) for r in resumed]
    assert torch.equal(draws[0], draws[1])  # deterministic given the checkpoint
    same = EpochState(model, opt, sched, torch.Generator())
    same.load_state_dict(state)
    assert torch.equal(same.generator.get_state(), state["generator"])
