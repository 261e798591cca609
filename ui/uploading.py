"""UI for uploaded datasets (bdcore.uploads), shared by the Launch page (the upload form) and the
Datasets page (the list): save an upload and say what was kept or why nothing was, and show a few
thumbnails of a dataset."""
from pathlib import Path

import streamlit as st

from bdcore.errors import UserError
from bdcore.uploads import ACCEPTED_SUFFIXES, MAX_FILES, UPLOADED, UploadReport, preview_images, save_upload

REPORT = "upload_report"  # session key: the last upload's report, shown once after the rerun


def show_preview(path: Path) -> None:
    """Up to 16 thumbnails of the dataset folder ``path``, captioned with their class folders."""
    thumbs = preview_images(path)
    if thumbs:
        st.image([image for _, image in thumbs], caption=[caption for caption, _ in thumbs], width=96)


def _show_report(report: UploadReport) -> None:
    st.success(f"Saved {report.images:,} images as '{report.name}' ({report.layout}). Choose "
               f"'{UPLOADED}{report.name}' in the dataset pickers at the top of this page.")
    if report.skipped:
        named = "; ".join(f"{name} ({why})" for name, why in report.skipped_examples)
        more = ", ..." if report.skipped > len(report.skipped_examples) else ""
        st.warning(f"Skipped {report.skipped:,} files that are not images: {named}{more}")
    show_preview(report.path)


def upload_form() -> None:
    """The "Upload a dataset" expander: a name, a zip or images, Save; then what was saved or an
    error box. A saved dataset reruns the page, so the pickers above it offer it."""
    with st.expander("Upload a dataset", expanded=REPORT in st.session_state):
        if REPORT in st.session_state:
            _show_report(st.session_state.pop(REPORT))
        with st.form("upload", clear_on_submit=True):
            name = st.text_input("dataset name", max_chars=64, help="letters, digits, - and _")
            files = st.file_uploader(
                "a zip of the dataset's folder, or images", type=ACCEPTED_SUFFIXES,
                accept_multiple_files=True,
                help=f"class sub-folders in the zip are the labels; images alone make an unlabeled set. "
                     f"Checked on the server: images only (by content), up to {MAX_FILES:,} files")
            replace = st.checkbox("replace an uploaded dataset of this name")
            saved = st.form_submit_button("Save the dataset")
        if saved:
            try:
                st.session_state[REPORT] = save_upload(name, [(f.name, f) for f in files], replace)
            except UserError as err:
                st.error(f"Not saved: {err}")
            else:
                st.rerun()
