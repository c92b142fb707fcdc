"""HTTP API and web widget: a thin FastAPI shell over one Assistant built at start-up.

Routes only translate HTTP to `Assistant` calls. Encoding runs in worker threads (never on the
event loop). Every client mistake becomes a 4xx with a JSON body naming the field at fault:
`{"error": code, "message": ..., "field": ..., "hint": ..., "errors": [...]}`.

models.py     request/response models (the OpenAPI contract) and API limits
errors.py     ApiError and the exception handlers
middleware.py rate limit, API key, body size, safe headers (before routing)
runtime.py    the Assistant, its loading/reloading, worker threads; the route dependencies
routes.py     the routes
app.py        create_app: wires the above together
"""

from .app import create_app
from .errors import ApiError
from .middleware import GuardMiddleware, RateLimiter, client_address, forwarded_hops
from .models import API_KEY_HEADER, MAX_K
from .routes import docs_csp
from .runtime import Runtime, get_assistant, get_runtime

__all__ = [
    "API_KEY_HEADER",
    "MAX_K",
    "ApiError",
    "GuardMiddleware",
    "RateLimiter",
    "Runtime",
    "client_address",
    "create_app",
    "docs_csp",
    "forwarded_hops",
    "get_assistant",
    "get_runtime",
]
