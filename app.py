"""The app's entry point (`streamlit run app.py`): the page config, set once here for every page,
and the navigation between the pages in ui/."""
import streamlit as st

from bdcore.errors import UserError

st.set_page_config(page_title="Blind Distillation Explorer", page_icon="🎓", layout="wide")

# Explicit URL paths keep the addresses the app has always had (/Launch, /Runs, ...).
page = st.navigation([
    st.Page("ui/home.py", title="Home", icon="🎓", default=True),
    st.Page("ui/launch.py", title="Launch", icon="🚀", url_path="Launch"),
    st.Page("ui/runs.py", title="Runs", icon="📈", url_path="Runs"),
    st.Page("ui/embeddings.py", title="Embeddings", icon="🗺️", url_path="Embeddings"),
    st.Page("ui/unlabeled.py", title="Unlabeled explorer", icon="🔎", url_path="Unlabeled"),
    st.Page("ui/extraction.py", title="Model extraction", icon="🧲", url_path="Extraction"),
    st.Page("ui/studies.py", title="Studies", icon="🧪", url_path="Studies"),
    st.Page("ui/datasets.py", title="Datasets", icon="🗂️", url_path="Datasets"),
 ])
try:
    page.run()
except UserError as err:  # an unusable file or folder the user can fix: say so, never a traceback
    st.error(str(err))

