"""API errors: one JSON shape for every failure, and the handlers that produce it.

`{"error": code, "message": ..., "field": ..., "hint": ..., "errors": [...]}`
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InputError
from ..settings import Settings

log = logging.getLogger("assistant.server")


class ApiError(Exception):
    """An error response with a JSON body naming the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.hint, self.headers, self.errors = field, hint, headers, errors or []

    def response(self) -> JSONResponse:
        body = {"error": self.code, "message": self.message, "field": self.field,
                "hint": self.hint, "errors": self.errors}  # fmt: skip
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error", "")
            return ApiError(
                400,
                "malformed_json",
                f"the request body is not valid JSON{': ' + str(detail) if detail else ''}",
                field="body",
                hint="send a JSON object with Content-Type: application/json",
            )
    problems = []
    for e in errors:
        field = _field_name(e.get("loc", ()))
        msg = str(e.get("msg", "invalid value"))
        if e.get("type") == "extra_forbidden":
            msg = "unknown field; check its spelling against /docs"
        problems.append({"field": field, "message": msg})
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return ApiError(
        422,
        "invalid_input",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        hint="see the request schema at /docs",
        errors=problems,
    )


def input_error(exc: InputError, field: str) -> ApiError:
    return ApiError(422, "invalid_input", f"{field}: {exc.message}", field=field, hint=exc.hint,
                    errors=[{"field": field, "message": exc.message}])  # fmt: skip


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    """Every failure as an ErrorBody: ours, validation, routing, 415/400 bodies and crashes."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        ctype = request.headers.get("content-type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        on_body = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors())
        if on_body and media and media != "application/json" and not media.endswith("+json"):
            return ApiError(415, "unsupported_media_type",
                            f"the body must be JSON sent as Content-Type: application/json, "
                            f"not {ctype[:100]}", field="Content-Type",
                            hint="send a JSON object with Content-Type: application/json",
                            ).response()  # fmt: skip
        return validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and request.method in ("POST", "PUT", "PATCH"):
            # FastAPI's "error parsing the body": not UTF-8 text, or JSON nested too deeply
            return ApiError(400, "malformed_json", "the request body is not valid JSON (not "
                            "UTF-8 text, or nested too deeply)", field="body",
                            hint="send a JSON object with Content-Type: application/json",
                            ).response()  # fmt: skip
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: f"no route {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(
            exc.status_code, str(exc.detail))  # fmt: skip
        return ApiError(exc.status_code, code, message, hint="see /docs",
                        headers=getattr(exc, "headers", None)).response()  # fmt: skip

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, request.url.path,
                  type(exc).__name__, exc_info=settings.debug)  # fmt: skip
        return ApiError(
            500, "internal_error", "internal error", hint="see the server log"
        ).response()
