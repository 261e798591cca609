"""The Streamlit pages that app.py routes between, the explorer pages' run picker, and the
resources every page shares (one per process, see resources.py)."""
