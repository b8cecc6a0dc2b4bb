"""Serving the app to a class: Streamlit replicas behind a load balancer, kept running by a process supervisor."""
