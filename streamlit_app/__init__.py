"""The tradepipe dashboard: a read-only Streamlit app over the trading database's query layer
(and, on the Models page, the MLflow registry).

Start it with `tradepipe dashboard`, or by hand with the argv of
`streamlit_app.launch.command(settings)` (`streamlit run streamlit_app/app.py ...`).
"""
