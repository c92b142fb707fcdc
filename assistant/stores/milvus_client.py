"""Reaching Milvus: the client from the settings (URI, token, TLS), and failures turned into
one-line errors that name the setting to fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AssistantError

if TYPE_CHECKING:
    from ..settings import Settings


def milvus_module() -> Any:
    """pymilvus, or the error saying which extra to install."""
    try:
        import pymilvus
    except ImportError as exc:
        raise AssistantError(
            "ASSISTANT_STORE=milvus needs pymilvus (and milvus-lite for a local file URI)",
            "install the scale extra: pip install -e '.[scale]' (or set ASSISTANT_STORE=local)",
        ) from exc
    return pymilvus


def connect(settings: Settings, uri: str) -> Any:
    pymilvus = milvus_module()
    s = settings
    if s.milvus_uri is None:  # the default Milvus Lite file lives in the index folder
        s.index_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"uri": uri, "timeout": s.milvus_timeout}
    if s.milvus_token:
        kwargs["token"] = s.milvus_token
    if s.milvus_db_name:
        kwargs["db_name"] = s.milvus_db_name
    if uri.startswith("https://") or s.milvus_tls_ca or s.milvus_tls_cert:
        kwargs["secure"] = True
        for key, value in (("ca_pem_path", s.milvus_tls_ca),
                           ("client_pem_path", s.milvus_tls_cert),
                           ("client_key_path", s.milvus_tls_key),
                           ("server_name", s.milvus_tls_server_name)):  # fmt: skip
            if value:
                kwargs[key] = str(value)
    try:
        client = pymilvus.MilvusClient(**kwargs)
        client.list_collections()
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line with its fix
        raise config_error(uri, exc) from exc
    return client


def config_error(uri: str, exc: BaseException) -> AssistantError:
    """The one-line error for a failed connection or call, naming the setting to fix."""
    text = str(getattr(exc, "message", "") or exc)
    low = text.lower()
    if any(w in low for w in ("auth", "credential", "token", "password", "permission")):
        return AssistantError(
            f"Milvus at {uri} refused the credentials: {text}",
            "check ASSISTANT_MILVUS_TOKEN ('user:password' or an API key)",
        )
    if any(w in low for w in ("ssl", "tls", "certificate", "handshake")):
        return AssistantError(
            f"TLS with Milvus at {uri} failed: {text}",
            "check ASSISTANT_MILVUS_TLS_CA / _CERT / _KEY / _SERVER_NAME",
        )
    if "lock" in low or _lite_locked(uri):
        return AssistantError(
            f"the Milvus Lite file {uri} is in use by another process: {text}",
            "a Milvus Lite file serves one process at a time: stop the other one, or point "
            "ASSISTANT_MILVUS_URI at a Milvus server (http://host:19530) for several",
        )
    return AssistantError(
        f"cannot reach Milvus at {uri}: {text}",
        "check ASSISTANT_MILVUS_URI (a writable local file for Milvus Lite, or "
        "http://host:19530 for a running server), or set ASSISTANT_STORE=local",
    )


def _lite_locked(uri: str) -> bool:
    """Whether another process holds the Milvus Lite data folder `uri` (its LOCK file)."""
    import fcntl

    lock = Path(uri) / "LOCK"
    if "://" in uri or not lock.is_file():
        return False
    try:
        with lock.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return True
    return False
