"""The embedding model on ONNX Runtime: exported once from torch, cached, optionally int8.

Questions and index builds then need only `onnxruntime` and `tokenizers` (imported in a fraction
of a second), not torch and sentence-transformers (5-7 s). The export itself uses torch, once per
model: the ONNX files are cached in a folder named by the model's fingerprint and a version of the
export recipe, so a changed model or recipe gets a fresh export, and a damaged cached file (size
or checksum differ from the record written beside it) is exported again with a message.

The graph takes `input_ids`, `attention_mask` (and `token_type_ids` when the model has them) and
returns the mean-pooled, L2-normalised sentence embedding. The int8 variant is the same graph
with MatMul weights quantised per output channel and activations quantised dynamically
(onnxruntime.quantization.quantize_dynamic); the first layer's feed-forward output projection
stays in float32, which lifts the worst cosine to the float model over the bundled corpus's
chunks from about 0.987 to about 0.991 (`bench/onnx_quality.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from .embed import EmbedderBase, Progress, model_fingerprint, resolve_model
from .errors import AssistantError

ONNX_BACKENDS = ("onnx", "onnx-int8")
# bump when the export or quantisation recipe changes: every cached file is then re-exported
EXPORT_VERSION = 1
OPSET = 17
META = "export.json"
# float32 nodes of the int8 model: the first layer's feed-forward output projection has the
# activation outliers that per-tensor dynamic quantisation handles worst
KEEP_FLOAT = ("/encoder/layer.0/output/dense/MatMul",)

Notice = Callable[[str], None]


def _stderr_notice(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """The user cache folder for exported models (site-packages may be read-only)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("net-liver-assistant")) / "onnx"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pooling(folder: Path) -> str:
    """The sentence-transformers pooling mode of a model folder ('mean' or 'cls')."""
    for cfg in sorted(folder.glob("*_Pooling/config.json")):
        data = json.loads(cfg.read_text(encoding="utf-8"))
        if data.get("pooling_mode_cls_token"):
            return "cls"
        if data.get("pooling_mode_mean_tokens", True):
            return "mean"
        raise AssistantError(
            f"the ONNX backend supports mean or CLS pooling; {cfg} asks for another",
            "use ASSISTANT_EMBEDDING_BACKEND=torch for this model",
        )
    return "mean"


def _max_length(folder: Path) -> int:
    cfg = folder / "sentence_bert_config.json"
    if cfg.exists():
        value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
        if value:
            return int(value)
    return 256


def export_onnx(folder: Path, target: Path) -> None:
    """Export a sentence-transformers model folder to an ONNX graph with pooling included.

    Needs torch and transformers (installed with sentence-transformers); runs once per model.
    """
    import inspect
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    pooling = _pooling(folder)
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    uses_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, *rest: Any) -> Any:
            kwargs = {"token_type_ids": rest[0]} if rest else {}
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, **kwargs
            ).last_hidden_state
            if pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(vec, p=2, dim=1)

    ids = torch.ones(2, 8, dtype=torch.long)
    args: tuple[Any, ...] = (ids, torch.ones_like(ids))
    names = ["input_ids", "attention_mask"]
    if uses_types:
        args += (torch.zeros_like(ids),)
        names.append("token_type_ids")
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["sentence_embedding"] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled(model),
            args,
            str(target),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights, per output channel."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node]
    keep = [n for n in names if n.endswith(KEEP_FLOAT)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice about pre-processing at WARNING
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=keep,
        )
    finally:
        root.setLevel(level)


class OnnxModelCache:
    """The exported files of one model, in `<cache>/<fingerprint>-v<EXPORT_VERSION>/`."""

    def __init__(self, folder: Path, fingerprint: str, cache_dir: Path | None = None) -> None:
        self.model_folder = folder
        self.fingerprint = fingerprint
        root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.dir = root / f"{fingerprint}-v{EXPORT_VERSION}"

    def _meta(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def problem(self, filename: str) -> str | None:
        """Why the cached file cannot be used (missing, stale, damaged), or None."""
        path = self.dir / filename
        if not path.exists():
            return "missing"
        meta = self._meta()
        if meta.get("fingerprint") != self.fingerprint or meta.get("version") != EXPORT_VERSION:
            return "stale (exported from another model or recipe)"
        record = meta.get("files", {}).get(filename)
        if not record:
            return "not recorded"
        if path.stat().st_size != record.get("size") or _sha256(path) != record.get("sha256"):
            return "damaged (size or checksum differ from the export record)"
        return None

    def _record(self, filename: str) -> None:
        meta = self._meta()
        if meta.get("fingerprint") != self.fingerprint or meta.get("version") != EXPORT_VERSION:
            meta = {"fingerprint": self.fingerprint, "version": EXPORT_VERSION, "files": {}}
        path = self.dir / filename
        meta["files"][filename] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        if filename == "model.onnx":  # a new float model: the int8 one made from the old goes
            meta["files"].pop("model-int8.onnx", None)
            (self.dir / "model-int8.onnx").unlink(missing_ok=True)
        meta["model_folder"] = str(self.model_folder)
        _atomic_write(self.dir / META, json.dumps(meta, indent=1).encode())

    def path(self, quantized: bool, notice: Notice = _stderr_notice) -> Path:
        """The usable ONNX file (float or int8), exported and quantised first when needed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = "model-int8.onnx" if quantized else "model.onnx"
        if self.problem(name) is None:
            return self.dir / name
        with _locked(self.dir / ".lock"):  # one process exports; the others then find the file
            return self._make(name, quantized, notice)

    def _make(self, name: str, quantized: bool, notice: Notice) -> Path:
        problem = self.problem(name)
        if problem is None:
            return self.dir / name
        if problem != "missing":
            notice(f"cached ONNX model {self.dir / name} is {problem}; exporting it again")
        float_problem = self.problem("model.onnx")
        if float_problem is not None:
            if float_problem != "missing" and quantized:
                notice(f"cached ONNX model {self.dir / 'model.onnx'} is {float_problem}; "
                       "exporting it again")  # fmt: skip
            notice(f"exporting the embedding model to ONNX in {self.dir} (once per model)")
            self._produce("model.onnx", lambda tmp: export_onnx(self.model_folder, tmp))
        if quantized:
            notice(f"quantising the ONNX model to int8 in {self.dir}")
            self._produce(name, lambda tmp: quantize_int8(self.dir / "model.onnx", tmp))
        return self.dir / name

    def optimized_name(self, filename: str) -> str | None:
        """File name of the optimised graph saved from a recorded model (by its checksum and the
        onnxruntime version), or None when the model is not recorded."""
        record = self._meta().get("files", {}).get(filename)
        if not record or not record.get("sha256"):
            return None
        from onnxruntime import __version__ as ort_version

        return f"{Path(filename).stem}.opt-{record['sha256'][:12]}-ort{ort_version}.onnx"

    def produce(self, filename: str, make: Callable[[Path], None]) -> None:
        """Write `filename` with `make(temporary path)` and record it, under the cache's lock."""
        with _locked(self.dir / ".lock"):
            self._produce(filename, make)

    def _produce(self, filename: str, make: Callable[[Path], None]) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=self.dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            make(tmp)
            os.replace(tmp, self.dir / filename)
        finally:
            tmp.unlink(missing_ok=True)
        self._record(filename)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` between processes (where the platform has flock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: exports are still atomic, just not shared
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class OnnxEmbedder(EmbedderBase):
    """A sentence-transformers model exported to ONNX, run by onnxruntime with `tokenizers`."""

    def __init__(
        self,
        model_name: str,
        quantized: bool = True,
        batch_size: int = 64,
        query_threads: int = 1,
        index_threads: int | None = None,
        cache_dir: Path | None = None,
        notice: Notice = _stderr_notice,
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        _, folder = resolve_model(model_name)
        if folder is None or not (folder / "tokenizer.json").exists():
            raise AssistantError(
                f"the ONNX embedding backend needs a local model folder with tokenizer.json; "
                f"'{model_name}' is not one",
                "use ASSISTANT_EMBEDDING_BACKEND=torch, or point ASSISTANT_EMBEDDING_MODEL at a "
                "downloaded sentence-transformers folder",
            )
        self.name = model_name
        self.backend = "onnx-int8" if quantized else "onnx"
        self.backend_version = EXPORT_VERSION  # a new export recipe makes other vectors
        self.fingerprint = model_fingerprint(model_name, folder)
        self.batch_size = batch_size
        self.query_threads = query_threads
        self.index_threads = index_threads or os.cpu_count() or 1
        self.cache = OnnxModelCache(folder, self.fingerprint, cache_dir)
        try:
            self.model_path = self.cache.path(quantized, notice)
        except OSError as exc:
            raise AssistantError(
                f"cannot write the ONNX export of '{model_name}' to {self.cache.dir}: {exc}",
                "point ASSISTANT_ONNX_CACHE_DIR at a writable folder, or use "
                "ASSISTANT_EMBEDDING_BACKEND=torch",
            ) from exc
        self._tokenizer = self._load_tokenizer(folder)
        self._vocabulary: frozenset[str] | None = None
        self._query_session = self._open_session(self.model_path, notice, quantized)
        self._index_session: Any = None
        self._inputs = {i.name for i in self._query_session.get_inputs()}
        self.dimension = int(self._run(self._query_session, ["probe"]).shape[1])

    @staticmethod
    def _load_tokenizer(folder: Path) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=_max_length(folder))
        pad = "[PAD]" if tokenizer.token_to_id("[PAD]") is not None else "<pad>"
        pad_id = tokenizer.token_to_id(pad) or 0
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)  # to the longest in the batch
        return tokenizer

    def _session(
        self, path: Path, threads: int, save_to: Path | None = None, optimized: bool = False
    ) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if optimized:  # a graph saved after optimisation: loading skips that work (~0.2 s)
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        else:  # EXTENDED: all that helps a transformer on CPU, and portable between CPUs
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            if save_to is not None:
                opts.optimized_model_filepath = str(save_to)
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # idle worker threads sleep instead of spinning: spinning steals CPU on a shared machine
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def _open_session(self, path: Path, notice: Notice, quantized: bool) -> Any:
        opt_name = self.cache.optimized_name(path.name)
        if opt_name and self.cache.problem(opt_name) is None:
            try:
                return self._session(self.cache.dir / opt_name, self.query_threads, optimized=True)
            except Exception:  # noqa: BLE001 - made again below from the checked model
                pass
        try:
            if opt_name is None:
                return self._session(path, self.query_threads)
            made: list[Any] = []
            with suppress(OSError):  # the optimised copy is only a shortcut
                self.cache.produce(
                    opt_name, lambda tmp: made.append(self._session(path, self.query_threads, tmp))
                )
            return made[0] if made else self._session(path, self.query_threads)
        except Exception as exc:  # noqa: BLE001 - a file onnxruntime rejects is exported again
            notice(f"onnxruntime cannot open {path} ({type(exc).__name__}); exporting it again")
            path.unlink(missing_ok=True)
            if quantized:
                (path.parent / "model.onnx").unlink(missing_ok=True)
            self.model_path = self.cache.path(quantized, notice)
            return self._session(self.model_path, self.query_threads)

    def _run(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        feed = {
            "input_ids": ids,
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        out = session.run(None, feed)[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Encode in batches sorted by length (little padding) on `index_threads` threads."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        if self.index_threads == self.query_threads:
            session = self._query_session
        else:
            if self._index_session is None:
                self._index_session = self._session(self.model_path, self.index_threads)
            session = self._index_session
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        done = 0
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            out[idx] = self._run(session, [texts[i] for i in idx])
            done += len(idx)
            if progress:
                progress(done, len(texts))
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode several questions in one batch (on `query_threads` threads)."""
        return self._run(self._query_session, texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._run(self._query_session, [text])[0]

    @property
    def vocabulary(self) -> frozenset[str]:
        """Whole words of the model's tokenizer vocabulary: a list of common words."""
        if self._vocabulary is None:
            vocab = self._tokenizer.get_vocab()
            self._vocabulary = frozenset(w for w in vocab if w.isalpha() and not w.startswith("##"))
        return self._vocabulary
