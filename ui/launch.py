"""Launch: pick a labeled / unlabeled pair, architectures and settings, and start a background run."""
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from bdcore.augment import AUGMENT_KINDS
from bdcore.config import MAX_IMAGE_SIZE, field_help
from bdcore.curation.transfer_sets import list_transfer_sets
from bdcore.data import DATASETS
from bdcore.device import available_devices
from bdcore.errors import UserError
from bdcore.models import MODELS
from bdcore.placement import PROCS_HELP, procs_worth_offering
from bdcore.presets import DEFAULT_PRESET, PRESETS, preset_config
from bdcore.preview import Preview, preview_dataset
from bdcore.uploads import UPLOADED, upload_names, upload_spec
from ui.launching import launch, report
from ui.uploading import upload_form

st.title("Launch a run")

CUSTOM = "a folder of images..."
DUPLICATE = "launch_duplicate"  # session key: (config, processes) whose twin was joined, to train anew


def forget_datasets() -> None:
    """A new preset brings its own datasets: the keyed pickers would keep the previous ones."""
    for role in ("labeled", "unlabeled"):
        st.session_state.pop(f"{role}_choice", None)


preset = st.radio("start from", list(PRESETS), index=list(PRESETS).index(DEFAULT_PRESET), horizontal=True,
                  format_func=lambda name: f"{name}: {PRESETS[name].summary}", on_change=forget_datasets)
defaults = preset_config(preset)  # the form's starting values (widgets without keys follow them)
chosen: dict[str, Any] = {}  # config field -> the form's value
uploaded = {f"{UPLOADED}{name}": upload_spec(name) for name in upload_names()}  # picker label -> spec
saved_sets = {f"transfer set: {ts.name} ({ts.size:,})": ts.spec for ts in list_transfer_sets()}  # likewise


@st.cache_data(show_spinner="Loading a preview...", max_entries=32)
def cached_preview(name: str, folder_stamp: int | None) -> Preview:  # the stamp: only part of the key
    return preview_dataset(name)


def dataset_preview(name: str) -> Preview:
    """``name``'s preview, computed once, and again when a folder dataset's folder is replaced (an
    upload deleted and saved again under its name is another dataset)."""
    stamp = None
    if name.startswith("folder:"):
        with suppress(OSError):  # no such folder: the preview says so
            stamp = Path(name.removeprefix("folder:")).expanduser().stat().st_mtime_ns
    return cached_preview(name, stamp)


def dataset_picker(column: DeltaGenerator, role: str) -> str:
    """The name of the ``role`` ("labeled" or "unlabeled") dataset, shown with a preview; "" until
    a custom folder is given."""
    with column:
        named = {**uploaded, **(saved_sets if role == "unlabeled" else {})}  # a transfer set is unlabeled
        choice = st.selectbox(f"{role} dataset", [*DATASETS, *named, CUSTOM], key=f"{role}_choice",
                              index=list(DATASETS).index(getattr(defaults, role)), help=field_help(role))
        name = named.get(choice, choice)
        if choice == CUSTOM:
            path = st.text_input(f"{role} folder path", key=f"{role}_folder",
                                 help="on the server: a folder (class sub-folders = labels, none = "
                                      "unlabeled), a .zip or .tar archive, a .txt list of image paths "
                                      "or a .csv manifest (path,label)")
            name = f"folder:{path.strip()}" if path.strip() else ""
        if not name:
            st.info("Enter a folder path.")
            return name
        preview = dataset_preview(name)
        if preview.ok:
            st.image(preview.grid, caption=f"{preview.size:,} images {preview.shape}", clamp=True)
            st.caption(f"Source: {preview.source}")
            if preview.demo_subset:
                st.warning("Bundled demo subset: fine for a demo, not comparable with the paper. "
                           "Set BD_DATA_DIR to the full dataset for that.")
        else:
            st.error(preview.source)
        return name


def setting(widget: Callable[..., Any], label: str, name: str, *args: Any, **kwargs: Any) -> None:
    """A form widget for the config field ``name``, with that field's help; its value goes to
    ``chosen``."""
    chosen[name] = widget(label, *args, help=field_help(name), **kwargs)


def data_problems(labeled: str, unlabeled: str) -> list[str]:
    """What keeps the chosen datasets from making a run (the config cannot tell: it names them)."""
    if not labeled or not unlabeled:
        return ["choose both datasets"]
    problems = [f"{name} cannot be loaded (see above)" for name in dict.fromkeys([labeled, unlabeled])
                if not dataset_preview(name).ok]
    classes = dataset_preview(labeled).classes if dataset_preview(labeled).ok else None
    if classes == []:
        problems.append(f"{labeled} has no labels (no class sub-folders): it can only be the unlabeled set")
    elif classes is not None and len(classes) < 2:  # one class: every prediction is "right"
        problems.append(f"{labeled} has one class ({classes[0]}): a labeled set needs at least 2 class "
                        "sub-folders")
    return problems


left, right = st.columns(2)
labeled = dataset_picker(left, "labeled")
unlabeled = dataset_picker(right, "unlabeled")

with st.form("launch"):
    st.subheader("Models and training")
    c1, c2, c3, c4 = st.columns(4)
    models = list(MODELS)
    setting(c1.selectbox, "teacher", "teacher", models, index=models.index(defaults.teacher))
    setting(c2.selectbox, "student", "student", models, index=models.index(defaults.student))
    setting(c3.number_input, "temperature T", "temperature", 0.1, 100.0, defaults.temperature, step=1.0)
    chosen["device"] = c4.selectbox("device", ["auto", *available_devices()],
                                    help=f"{field_help('device')}; here: {', '.join(available_devices())}")
    procs = 1
    if procs_worth_offering() > 1:  # several GPUs; on one GPU or on CPUs a second process only competes
        procs = c4.number_input("processes (one GPU each)", 1, procs_worth_offering(), 1, help=PROCS_HELP)

    c1, c2, c3, c4 = st.columns(4)
    setting(c1.number_input, "teacher epochs", "teacher_epochs", 1, 500, defaults.teacher_epochs)
    setting(c2.number_input, "blind epochs", "blind_epochs", 1, 500, defaults.blind_epochs)
    setting(c3.number_input, "fine-tune epochs", "finetune_epochs", 0, 500, defaults.finetune_epochs)
    chosen["finetune_ks"] = c4.text_input("fine-tune k per class", ", ".join(defaults.finetune_ks),
                                          help=f"{field_help('finetune_ks')}, comma-separated")

    c1, c2, c3, c4, c5 = st.columns(5)
    setting(c1.number_input, "teacher lr", "teacher_lr", 1e-6, 1.0, defaults.teacher_lr, format="%.4f")
    setting(c2.number_input, "blind lr", "blind_lr", 1e-6, 1.0, defaults.blind_lr, format="%.4f")
    setting(c3.number_input, "fine-tune lr", "finetune_lr", 1e-6, 1.0, defaults.finetune_lr, format="%.4f")
    setting(c4.number_input, "batch size", "batch_size", 1, 8192, defaults.batch_size)
    setting(c5.number_input, "seed", "seed", 0, 2**31 - 1, defaults.seed)

    with st.expander("More settings"):
        c1, c2, c3 = st.columns(3)
        setting(c1.number_input, "fine-tune temperature", "finetune_temperature", 0.1, 100.0,
                defaults.finetune_temperature)
        setting(c2.slider, "hard-label weight", "hard_label_weight", 0.0, 1.0, defaults.hard_label_weight)
        setting(c3.number_input, "labeled images (0 = all)", "labeled_limit", 0, 10_000_000,
                defaults.labeled_limit or 0)
        setting(c3.number_input, "unlabeled images (0 = all)", "unlabeled_limit", 0, 10_000_000,
                defaults.unlabeled_limit or 0)
        setting(c1.number_input, "image size of a collection (0 = its own, up to 64 px)", "image_size", 0,
                MAX_IMAGE_SIZE, defaults.image_size or 0)
        setting(c1.checkbox, "augment teacher training", "teacher_augment", defaults.teacher_augment)
        kinds = list(AUGMENT_KINDS)
        setting(c1.selectbox, "augmentation", "augment_kind", kinds, index=kinds.index(defaults.augment_kind))
        setting(c3.number_input, "teacher input noise", "teacher_input_noise", 0.0, 10.0,
                defaults.teacher_input_noise, step=0.1)
        setting(c2.checkbox, "augment unlabeled images", "blind_augment", defaults.blind_augment)
        setting(c2.checkbox, "augment fine-tuning", "finetune_augment", defaults.finetune_augment)
        setting(c2.checkbox, "teacher scores each distorted fine-tune batch", "finetune_fresh_teacher",
                defaults.finetune_fresh_teacher)
        setting(c3.number_input, "unlabeled distortion strength", "blind_augment_strength", 0.1, 9.5,
                defaults.blind_augment_strength, step=0.5)
    submitted = st.form_submit_button("Launch", type="primary")

if submitted:
    chosen["finetune_ks"] = [k.strip() for k in chosen["finetune_ks"].split(",") if k.strip()]
    chosen["image_size"] = chosen["image_size"] or None  # the form's 0: the collection decides
    for limit in ("labeled_limit", "unlabeled_limit"):
        chosen[limit] = chosen[limit] or None  # the form's 0: every image
    problems = data_problems(labeled, unlabeled)
    if not chosen["finetune_ks"]:
        problems.append("give at least one fine-tune k (a number or 'all')")
    st.session_state.pop(DUPLICATE, None)
    if not problems:
        config = preset_config(preset, labeled=labeled, unlabeled=unlabeled, **chosen)
        try:  # submit checks every field of the config and names each bad one; the store its file
            submitted_run = launch(config, procs=procs)
        except UserError as err:
            problems.append(str(err))
    if problems:
        st.error("Not launched:\n\n" + "\n".join(f"- {p}" for p in problems))
    else:
        report(submitted_run)
        if submitted_run.shared:
            st.session_state[DUPLICATE] = config, procs

if DUPLICATE in st.session_state:
    if st.button("Train a new run with these settings anyway",
                 help="the same settings on the same device give the same results; another seed gives "
                      "a new sample of them"):
        config, procs = st.session_state.pop(DUPLICATE)
        report(launch(config, force=True, procs=procs))

# Last on the page, so the pickers and the launch form keep their places; a saved upload reruns the
# page, and the pickers at the top then offer it.
upload_form()
