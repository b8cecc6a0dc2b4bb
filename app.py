"""ShuffleNet Lens: `streamlit run app.py`. The shell: page list, shared sidebar, then the chosen page."""

import streamlit as st

import ui
from shufflenet_viz.runtime import configure_torch_threads

configure_torch_threads()
# A local favicon: without one Streamlit shows the current page's Material icon, fetched from Google's servers.
st.set_page_config(page_title="ShuffleNet Lens", page_icon="🔍", layout="wide")

# Each page's file path, title and icon; the first is the landing page. Pages that other helpers write add
# their own entry here once their file exists.
PAGES = [
    st.Page("pages/classify.py", title="Classify", icon=":material/image_search:", default=True),
    st.Page("pages/shuffle.py", title="Channel shuffle", icon=":material/shuffle:"),
    st.Page("pages/information_flow.py", title="Information flow", icon=":material/account_tree:"),
    st.Page("pages/flops.py", title="FLOPs", icon=":material/speed:"),
    st.Page("pages/feature_maps.py", title="Feature maps", icon=":material/grid_view:"),
    st.Page("pages/attributions.py", title="Attributions", icon=":material/insights:"),
]

page = st.navigation(PAGES)
ui.sidebar()
page.run()
