"""One JSON error shape for every refusal: `{"error": "<what to do>"}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["ApiError", "install_error_handler"]


class ApiError(Exception):
    """A refusal with its HTTP status; the message names the input and what to do."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


def install_error_handler(app: FastAPI) -> None:
    async def handle(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return JSONResponse(
            {"error": error.message}, status_code=error.status_code, headers=error.headers
        )

    app.add_exception_handler(ApiError, handle)
