"""Launch: pick a labeled / unlabeled pair, architectures and settings, and start a background run."""
import streamlit as st

from bdcore import jobs
from bdcore.config import ExperimentConfig
from bdcore.data import DATASETS
from bdcore.device import available_devices
from bdcore.models import MODELS
from bdcore.preview import preview_dataset
from bdcore.store import RunStore

st.set_page_config(page_title="Launch · Blind Distillation", page_icon="🚀", layout="wide")
st.title("Launch a run")

CUSTOM = "a folder of images..."
defaults = ExperimentConfig()


@st.cache_data(show_spinner="Loading a preview...", max_entries=32)
def cached_preview(name: str):
    return preview_dataset(name)


def dataset_picker(column, role: str, default: str) -> str:
    with column:
        choice = st.selectbox(f"{role} dataset", [*DATASETS, CUSTOM], index=list(DATASETS).index(default),
                              key=f"{role}_choice")
        name = choice
        if choice == CUSTOM:
            path = st.text_input(f"{role} folder path", key=f"{role}_folder",
                                 help="class sub-folders = labels; a flat folder of images = unlabeled")
            name = f"folder:{path.strip()}" if path.strip() else ""
        if not name:
            st.info("Enter a folder path.")
            return name
        preview = cached_preview(name)
        if preview.ok:
            st.image(preview.grid, caption=f"{preview.size:,} images {preview.shape}", clamp=True)
            st.caption(f"Source: {preview.source}")
            if preview.demo_subset:
                st.warning("Bundled demo subset: fine for a demo, not comparable with the paper. "
                           "Set BD_DATA_DIR to the full dataset for that.")
        else:
            st.error(preview.source)
        return name


left, right = st.columns(2)
labeled = dataset_picker(left, "labeled", defaults.labeled)
unlabeled = dataset_picker(right, "unlabeled", defaults.unlabeled)

with st.form("launch"):
    st.subheader("Models and training")
    c1, c2, c3, c4 = st.columns(4)
    models = list(MODELS)
    teacher = c1.selectbox("teacher", models, index=models.index(defaults.teacher))
    student = c2.selectbox("student", models, index=models.index(defaults.student))
    temperature = c3.number_input("temperature T", 0.1, 100.0, defaults.temperature, step=1.0)
    devices = ["auto", *available_devices()]
    device = c4.selectbox("device", devices, help=f"available here: {', '.join(available_devices())}")

    c1, c2, c3, c4 = st.columns(4)
    teacher_epochs = c1.number_input("teacher epochs", 1, 500, defaults.teacher_epochs)
    blind_epochs = c2.number_input("blind epochs", 1, 500, defaults.blind_epochs)
    finetune_epochs = c3.number_input("fine-tune epochs", 0, 500, defaults.finetune_epochs)
    ks = c4.text_input("fine-tune k per class", ", ".join(defaults.finetune_ks),
                       help="comma-separated: numbers of labeled samples per class, or 'all'")

    c1, c2, c3, c4, c5 = st.columns(5)
    teacher_lr = c1.number_input("teacher lr", 1e-6, 1.0, defaults.teacher_lr, format="%.4f")
    blind_lr = c2.number_input("blind lr", 1e-6, 1.0, defaults.blind_lr, format="%.4f")
    finetune_lr = c3.number_input("fine-tune lr", 1e-6, 1.0, defaults.finetune_lr, format="%.4f")
    batch_size = c4.number_input("batch size", 1, 8192, defaults.batch_size)
    seed = c5.number_input("seed", 0, 2**31 - 1, defaults.seed)

    with st.expander("More settings"):
        c1, c2, c3 = st.columns(3)
        finetune_temperature = c1.number_input("fine-tune temperature", 0.1, 100.0, defaults.finetune_temperature)
        hard_label_weight = c2.slider("hard-label weight", 0.0, 1.0, defaults.hard_label_weight)
        labeled_limit = c3.number_input("labeled images (0 = all)", 0, 10_000_000, 0)
        unlabeled_limit = c3.number_input("unlabeled images (0 = all)", 0, 10_000_000, 0)
        teacher_augment = c1.checkbox("augment teacher training", defaults.teacher_augment)
        teacher_input_noise = c3.number_input(
            "teacher input noise", 0.0, 10.0, defaults.teacher_input_noise, step=0.1,
            help="std of Gaussian noise on the teacher's training images (a smoother teacher)")
        blind_augment = c2.checkbox("augment unlabeled images", defaults.blind_augment)
        finetune_augment = c2.checkbox("augment fine-tuning", defaults.finetune_augment)
        finetune_fresh_teacher = c2.checkbox(
            "teacher scores each distorted fine-tune batch", defaults.finetune_fresh_teacher,
            help="off: the teacher's logits of the undistorted images, computed once (faster, "
                 "slightly less accurate)")
        blind_augment_strength = c3.number_input(
            "unlabeled distortion strength", 0.1, 9.5, defaults.blind_augment_strength, step=0.5,
            help="scales the distortions of unlabeled images (1: 10 degrees, 10% zoom, 2 px; "
                 "4: 40 degrees, 40%, 4 px)")
    submitted = st.form_submit_button("Launch", type="primary")

if submitted:
    config = ExperimentConfig(
        labeled=labeled, unlabeled=unlabeled, teacher=teacher, student=student,
        temperature=float(temperature), finetune_temperature=float(finetune_temperature),
        hard_label_weight=float(hard_label_weight), teacher_epochs=int(teacher_epochs),
        blind_epochs=int(blind_epochs), finetune_epochs=int(finetune_epochs),
        finetune_ks=[k.strip() for k in ks.split(",") if k.strip()],
        teacher_lr=float(teacher_lr), blind_lr=float(blind_lr), finetune_lr=float(finetune_lr),
        batch_size=int(batch_size), teacher_augment=teacher_augment,
        teacher_input_noise=float(teacher_input_noise), blind_augment=blind_augment,
        blind_augment_strength=float(blind_augment_strength),
        finetune_augment=finetune_augment, finetune_fresh_teacher=finetune_fresh_teacher,
        labeled_limit=int(labeled_limit) or None,
        unlabeled_limit=int(unlabeled_limit) or None, seed=int(seed), device=device)
    problems = []
    if not labeled or not unlabeled:
        problems.append("choose both datasets")
    for name in {labeled, unlabeled} - {""}:
        preview = cached_preview(name)
        if not preview.ok:
            problems.append(f"{name} cannot be loaded (see above)")
    if labeled and cached_preview(labeled).ok and cached_preview(labeled).classes == []:
        problems.append(f"{labeled} has no labels (no class sub-folders): it can only be the unlabeled set")
    if not config.finetune_ks:
        problems.append("give at least one fine-tune k (a number or 'all')")
    try:
        config.validate()
    except ValueError as err:
        problems.append(str(err))
    if problems:
        st.error("Not launched:\n\n" + "\n".join(f"- {p}" for p in problems))
    else:
        run_id = jobs.submit(RunStore(), config)
        st.success(f"Run {run_id} launched.")
        st.page_link("pages/2_Runs.py", label="Watch it on the Runs page", icon="📈")
