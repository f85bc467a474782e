"""The dashboard's pages: scripts that `st.navigation` runs (see streamlit_app/app.py), each
drawing one page from the query layer. They are run, never imported."""
