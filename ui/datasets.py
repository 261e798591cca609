"""Datasets: the datasets uploaded on the Launch page, each with a few thumbnails, and deleting one
(after a confirmation naming the runs trained on it); the saved transfer sets, each with its
provenance, a one-click relaunch and a delete button; then the prepared-dataset cache, each set
with its size, skipped files and a delete button."""
import time

import streamlit as st

from bdcore.curation import transfer_sets
from bdcore.data import DATASETS, load_dataset
from bdcore.data.prepared import cache_root, delete_prepared, list_prepared
from bdcore.data.registry import is_collection
from bdcore.errors import UserError
from bdcore.uploads import UPLOADED, delete_upload, list_uploads
from ui.launching import relaunch_button
from ui.resources import run_store
from ui.uploading import show_preview

CONFIRM = "delete_upload"  # session key: the dataset whose deletion awaits confirmation
DELETED = "deleted_upload"  # session key: the dataset just deleted, said once after the rerun
CONFIRM_SET = "delete_transfer_set"  # session key: the transfer set whose deletion awaits confirmation

st.title("Uploaded datasets")
if DELETED in st.session_state:
    st.success(f"Deleted '{st.session_state.pop(DELETED)}'.")
uploads = list_uploads()
if not uploads:
    st.info("No uploaded datasets yet.")
st.page_link("ui/launch.py", label="Upload a zip or images on the Launch page", icon="🚀")

for info in uploads:
    with st.container(border=True):
        st.subheader(info.name)
        st.caption(f"{info.images:,} images, {info.bytes / 2**20:,.1f} MB, uploaded "
                   f"{info.created:%Y-%m-%d %H:%M}; {info.layout}. On the Launch page: "
                   f"'{UPLOADED}{info.name}'; elsewhere: {info.spec}")
        show_preview(info.path)
        if st.session_state.get(CONFIRM) != info.name:
            if st.button("Delete", key=f"delete_{info.name}"):
                st.session_state[CONFIRM] = info.name
                st.rerun()
            continue
        used = [r.id for r in run_store().list() if info.spec in (r.config.labeled, r.config.unlabeled)]
        st.warning(f"Delete '{info.name}' and its {info.images:,} images from the server? This cannot be "
                   "undone." + (f" Runs trained on it can then no longer be opened or resumed: "
                                f"{', '.join(used)}." if used else ""))
        yes, no = st.columns(2)
        if yes.button("Yes, delete it", key=f"confirm_{info.name}", type="primary"):
            del st.session_state[CONFIRM]
            delete_upload(info.name)  # a UserError (deleted meanwhile) is app.py's error box
            st.session_state[DELETED] = info.name
            st.rerun()
        if no.button("Cancel", key=f"cancel_{info.name}"):
            del st.session_state[CONFIRM]
            st.rerun()

st.header("Transfer sets")
st.caption("Subsets of unlabeled sets saved from the Unlabeled explorer, the Embeddings page or "
           "`python -m bdcore subsets make`; kept as the rows they use of their source, not as copies. "
           "A run trains on one as its unlabeled set (on the Launch page, or `--unlabeled subset:NAME`).")
saved = transfer_sets.list_transfer_sets()
if not saved:
    st.info("No transfer sets yet: save one from the Unlabeled explorer or the Embeddings page.")
for ts in saved:
    with st.container(border=True):
        st.markdown(f"**{ts.spec}**: {ts.describe()}")
        details = ", ".join(f"{k}: {v}" for k, v in ts.provenance.items() if k not in ("run", "how"))
        st.caption(f"saved {time.strftime('%Y-%m-%d %H:%M', time.localtime(ts.created))}"
                   + (f"; {details}" if details else ""))
        left, right = st.columns([3, 1])
        with left:
            if ts.provenance.get("run"):
                relaunch_button(ts, key=f"relaunch_{ts.name}")
        used = [r.id for r in run_store().list() if r.config.unlabeled == ts.spec]
        if st.session_state.get(CONFIRM_SET) != ts.name:
            if right.button("Delete", key=f"delete_set_{ts.name}"):
                st.session_state[CONFIRM_SET] = ts.name
                st.rerun()
            continue
        st.warning(f"Delete {ts.spec}? This cannot be undone." + (
            f" Runs trained on it keep their results but can no longer be resumed or explored: "
            f"{', '.join(used)}." if used else ""))
        yes, no = st.columns(2)
        if yes.button("Yes, delete it", key=f"confirm_set_{ts.name}", type="primary"):
            del st.session_state[CONFIRM_SET]
            transfer_sets.delete(ts.name)  # a UserError (deleted meanwhile) is app.py's error box
            st.rerun()
        if no.button("Cancel", key=f"cancel_set_{ts.name}"):
            del st.session_state[CONFIRM_SET]
            st.rerun()

if saved:
    with st.form("union"):
        st.markdown("**Join sets into a new transfer set** (their images, each once)")
        in_memory = [name for name in DATASETS if not is_collection(name)]  # sized without preparing
        picked = st.multiselect("sets", [ts.spec for ts in saved] + in_memory,
                                help="saved transfer sets, and whole datasets (their train split)")
        name = st.text_input("name of the new set")
        if st.form_submit_button("Join"):
            try:
                sizes = {s: len(load_dataset(s, "train")) for s in picked if s in in_memory}
                joined = transfer_sets.union(picked, name.strip(), sizes=sizes)
                st.success(f"Saved {joined.spec}: {joined.describe()}")
            except UserError as err:
                st.error(str(err))

st.header("Prepared for training")
st.caption(f"Image collections decoded once at a run's image size (in the run's worker process, its "
           f"progress on the Runs page) and reused by every later run: {cache_root()}. Deleting one "
           "frees its disk space; the next run that needs it prepares it again.")
prepared = list_prepared()
if not prepared:
    st.info("Nothing prepared yet: a run whose dataset is a folder, an archive or an upload prepares it.")
for item in prepared:
    left, right = st.columns([5, 1])
    skipped = f", {item.skipped_count:,} skipped" if item.skipped_count else ""
    left.markdown(f"**{item.source}** ({item.split}), {'x'.join(map(str, item.shape))}: {item.count:,} images"
                  f"{skipped}, {item.bytes / 2**20:,.1f} MB, prepared in {item.seconds:.0f} s")
    if item.skipped_note():
        left.caption(item.skipped_note())
    if right.button("Delete", key=f"delete_prepared_{item.key}"):
        delete_prepared(item.key)  # a UserError (deleted meanwhile) is app.py's error box
        st.rerun()
