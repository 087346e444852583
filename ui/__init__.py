"""Streamlit explorer: pages that read through the CivicPulse API."""
