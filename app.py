"""ShuffleNet Lens: `streamlit run app.py`. The shell: page list, shared sidebar, then the chosen page."""

from pathlib import Path

import streamlit as st

import ui
from shufflenet_viz.runtime import configure_torch_threads

configure_torch_threads()
# A local favicon: without one Streamlit shows the current page's Material icon, fetched from Google's servers
# (as it does for a Material icon given here); an emoji costs a 0.3 s load of Streamlit's emoji table at start.
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"  # channels in 3 groups, then shuffled
# A projector shows the page: its sidebar starts collapsed there (the arrow at the top left brings it back).
st.set_page_config(page_title="ShuffleNet Lens", page_icon=FAVICON, layout="wide",
                   initial_sidebar_state="collapsed" if ui.projector_mode() else None)

# Each page's file path, title and icon; the first is the landing page.
PAGES = [
    st.Page("pages/classify.py", title="Classify", icon=":material/image_search:", default=True),
    st.Page("pages/lesson.py", title="Lesson", icon=":material/school:"),
    st.Page("pages/shuffle.py", title="Channel shuffle", icon=":material/shuffle:"),
    st.Page("pages/unit.py", title="The unit", icon=":material/schema:"),
    st.Page("pages/cost.py", title="Cost arithmetic", icon=":material/calculate:"),
    st.Page("pages/information_flow.py", title="Information flow", icon=":material/account_tree:"),
    st.Page("pages/experiments.py", title="Does the shuffle help?", icon=":material/science:"),
    st.Page("pages/flops.py", title="FLOPs", icon=":material/speed:"),
    st.Page("pages/feature_maps.py", title="Feature maps", icon=":material/grid_view:"),
    st.Page("pages/attributions.py", title="Attributions", icon=":material/insights:"),
    st.Page("pages/gallery.py", title="Class gallery", icon=":material/photo_library:"),
]

page = st.navigation(PAGES)
ui.draw_sidebar(page.url_path)
page.run()
