"""Who may see the dashboard: everyone on loopback, a password holder elsewhere.

Off loopback without a password (an empty or blank one counts as none) the dashboard
refuses to serve (the launcher refuses to start it too; this covers `streamlit run` by
hand). With a password set, each browser
session asks for it once. The session keeps a keyed digest of the password, never the
password, so changing the password in the config signs every session out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import streamlit as st
from pydantic import SecretStr

from streamlit_app.launch import exposure_refusal, usable_password

__all__ = ["allowed"]

_SESSION_KEY = "tradepipe_access"
_FORM_KEY = "tradepipe_login"
# Per process: a digest in one process's session state means nothing to another.
_DIGEST_KEY = secrets.token_bytes(32)


def _digest(password: str) -> str:
    return hmac.new(_DIGEST_KEY, password.encode(), hashlib.sha256).hexdigest()


def allowed(password: SecretStr | None) -> bool:
    """True when this session may see the pages; otherwise the reason or the password form
    has been drawn and the caller should stop."""
    bound = st.get_option("server.address")
    refusal = exposure_refusal(bound, password=password)
    if refusal is not None:
        st.error(
            f"The dashboard refuses to serve: {refusal}. Start it with `tradepipe dashboard`, "
            "or by hand with `streamlit run streamlit_app/app.py --server.address 127.0.0.1`."
        )
        return False
    password = usable_password(password)  # a blank one is none (allowed on loopback only)
    if password is None:
        return True
    expected = _digest(password.get_secret_value())
    held = st.session_state.get(_SESSION_KEY)
    if isinstance(held, str) and hmac.compare_digest(held, expected):
        return True
    st.title("tradepipe")
    with st.form(_FORM_KEY, clear_on_submit=True):
        entered = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if hmac.compare_digest(entered.encode(), password.get_secret_value().encode()):
            st.session_state[_SESSION_KEY] = expected
            st.rerun()
        st.error("Wrong password.")
    return False
