"""Class gallery: every student's photo on the projector and where the room's two models agree. The URL says
which view: ?teacher=<secret> (the teacher's page: settings, approval queue, ending the room), ?show=<code> (the
projected grid), ?code=<code> (a student joining); without any, join by code or open a room."""

import streamlit as st

import ui
from ui import gallery

ui.ensure_shell()

st.title("Class gallery")
gallery.say_message()
with gallery.database_errors():
    if gallery.SHOW_PARAM in st.query_params:
        gallery.projected_view(st.query_params[gallery.SHOW_PARAM])
    elif gallery.CODE_PARAM in st.query_params:
        gallery.student_view(st.query_params[gallery.CODE_PARAM])
    elif gallery.TEACHER_PARAM not in st.query_params or not gallery.teacher_view(
            st.query_params[gallery.TEACHER_PARAM]):
        left, right = ui.model_pair()
        gallery.landing((left.name, right.name))
