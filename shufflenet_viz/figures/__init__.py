"""Plotly figures built from the data that the computation modules return (no Streamlit here)."""
