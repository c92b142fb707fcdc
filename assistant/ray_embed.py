"""Embedding on Ray (`assistant index --ray [ADDRESS]`): Ray Data `map_batches` over actors that
each load the model once.

The texts are sorted by length and cut into the same model batches a local build makes (each
Ray batch is a whole number of them), so the vectors equal the local ones: batch make-up matters
for the int8 model, whose activations are quantised per batch. Vectors stream back to the
driver in batches and go into the selected store with the rest of the build. Only this module
imports Ray, and only `--ray` imports it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .embed import Progress, embedder_backend
from .errors import AssistantError

if TYPE_CHECKING:
    from .embed import Embedder
    from .settings import Settings

LOCAL = ("", "local")  # --ray without an address: a Ray instance started in this process
# each streamed build batch is one Ray Data job whose actors load the model afresh (seconds):
# a batch gives every actor at least this many calls, so that start-up stays a small share
CALLS_PER_ACTOR = 20


def ray_module() -> Any:
    """Ray, or the error saying which extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is the part used
    except ImportError as exc:
        raise AssistantError(
            "--ray needs Ray Data",
            "install the scale extra: pip install -e '.[scale]' (or build without --ray)",
        ) from exc
    return ray


def start_ray(address: str | None, settings: Settings) -> Any:
    """Connect to the Ray cluster at `address`, or start a local one; the ray module."""
    ray = ray_module()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "ignore_reinit_error": True}  # fmt: skip
    try:
        if address in LOCAL or address is None:
            ray.init(**kwargs)
        else:
            # the cluster's workers get this package from here; the model package must be
            # installed on them (see docs/scale.md)
            package = str(Path(__file__).resolve().parent)
            ray.init(address=address, runtime_env={"py_modules": [package]}, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one line naming the flag
        raise AssistantError(
            f"cannot start or reach Ray at '{address or 'local'}': {type(exc).__name__}: {exc}",
            "check the address given to --ray (e.g. ray://head:10001 or auto), or omit it to "
            "start Ray on this machine",
        ) from exc
    return ray


class _EmbedActor:
    """One Ray actor: loads the model once, embeds the batches it is given."""

    def __init__(self, config: dict[str, Any]) -> None:
        from .embed import load_embedder

        self.embedder = load_embedder(**config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        idx = [np.asarray(i, dtype=np.int64) for i in batch["idx"]]
        texts = [list(t) for t in batch["texts"]]
        flat = [t for group in texts for t in group]
        vectors = self.embedder.embed_documents(flat)
        return {"idx": np.concatenate(idx), "vectors": vectors}


class RayEmbedder:
    """An Embedder whose `embed_documents` runs on Ray actors; questions stay local.

    Name, fingerprint, dimension and backend are the local embedder's: the vectors are the same.
    """

    def __init__(self, local: Embedder, settings: Settings, address: str | None = None) -> None:
        self.local = local
        self.settings = settings
        self.address = address
        self.name = local.name
        self.dimension = local.dimension
        self.fingerprint = local.fingerprint
        self.backend = embedder_backend(local)
        self.backend_version = local.backend_version
        self.batch_size = int(getattr(local, "batch_size", settings.batch_size))

    def build_batch_chunks(self, requested: int) -> int:
        """Chunks per streamed build batch on Ray: at least `CALLS_PER_ACTOR` calls of
        `ray_batch_size` texts for each actor, or `requested` if larger."""
        s = self.settings
        return max(requested, CALLS_PER_ACTOR * s.ray_batch_size * s.ray_actors)

    def _config(self, gpus: float) -> dict[str, Any]:
        s = self.settings
        threads = max(1, int(s.ray_cpus_per_actor))
        return {
            "model_name": s.embedding_model,
            "device": "cuda" if gpus > 0 else s.device,
            "batch_size": self.batch_size,
            "query_threads": threads,
            "index_threads": threads,
            "backend": self.backend,
            "cache_dir": s.onnx_cache_dir,
        }

    def _gpus(self, ray: Any) -> float:
        if self.settings.ray_gpus_per_actor is not None:
            return float(self.settings.ray_gpus_per_actor)
        return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        ray = start_ray(self.address, self.settings)
        s = self.settings
        per_call = -(-s.ray_batch_size // self.batch_size) * self.batch_size
        # the local build's order and cuts (embed_onnx / embed: sorted by length, stable)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        items = [
            {"idx": order[i : i + per_call], "texts": [texts[j] for j in order[i : i + per_call]]}
            for i in range(0, len(order), per_call)
        ]
        gpus = self._gpus(ray)
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            _EmbedActor,
            fn_constructor_kwargs={"config": self._config(gpus)},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(s.ray_actors, len(items))),
            num_cpus=s.ray_cpus_per_actor,
            num_gpus=gpus,
        )
        done = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            rows = np.asarray(batch["idx"], dtype=np.int64)
            out[rows] = np.asarray(batch["vectors"], dtype=np.float32)
            done += len(rows)
            if progress:
                progress(done, len(texts))
        if done != len(texts):
            raise AssistantError(
                f"Ray returned {done} of {len(texts)} vectors",
                "run the build again (assistant index --ray); check the Ray cluster's logs",
            )
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.local.embed_query(text)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.embed_queries(texts)
