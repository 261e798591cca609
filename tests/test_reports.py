"""The Runs page's curves: one panel per stage in training order, and only labelled reference lines."""
from bdcore.config import ExperimentConfig
from bdcore.reports import curves_figure, curves_frame
from bdcore.store import RunRecord, Status


def test_curves_have_a_panel_per_stage_and_no_unlabelled_reference_line():
    record = RunRecord("r1", 0.0, 0.0, Status.SUCCEEDED, ExperimentConfig(), final={"teacher_acc": 0.99})
    epochs = [{"run_id": "r1", "stage": stage, "epoch": 1, "epochs": 1, "train_loss": 1.0,
               "test_acc": 0.9, "lr": 1e-3, "seconds": 1.0}
              for stage in ("finetune-kall", "blind", "finetune-k10", "teacher")]
    figure = curves_figure(curves_frame(epochs, [record]), [record])
    texts = [a.text for a in figure.layout.annotations]
    assert texts[:4] == ["teacher", "blind", "finetune-k10", "finetune-kall"]  # panel titles
    assert "new text" not in texts  # plotly's placeholder for a reference line given no label
    assert texts.count("teacher") == 2  # the panel title and one teacher line label
