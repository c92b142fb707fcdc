"""Concurrent questions are encoded together, and every caller gets its own vector back."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import FakeEmbedder

from assistant.embed import QueryBatcher, embedder_backend


class SlowFake(FakeEmbedder):
    """A fake whose batch call takes a while and records batch sizes."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def embed_queries(self, texts):
        with self.lock:
            self.batches.append(len(texts))
        time.sleep(0.02)
        if self.fail_on and self.fail_on in texts:
            raise RuntimeError("model failed")
        return np.stack([FakeEmbedder.embed_query(self, t) for t in texts])

    def embed_query(self, text):
        time.sleep(0.002)  # a single question takes time too, so callers overlap
        if self.fail_on and text == self.fail_on:
            raise RuntimeError("model failed")
        return super().embed_query(text)


def test_concurrent_questions_share_batches_and_get_their_own_vectors():
    fake = SlowFake()
    gate = threading.Event()
    plain = fake.embed_query

    def first_blocks(text):
        if text == "first":
            assert gate.wait(10)
        return plain(text)

    fake.embed_query = first_blocks
    batcher = QueryBatcher(fake)
    texts = [f"liver metastases question {i}" for i in range(15)]
    with ThreadPoolExecutor(16) as pool:
        lead = pool.submit(batcher.embed_query, "first")
        while not batcher._busy:
            time.sleep(0.001)
        rest = [pool.submit(batcher.embed_query, t) for t in texts]
        deadline = time.monotonic() + 10
        while len(batcher._pending) < len(texts) and time.monotonic() < deadline:
            time.sleep(0.001)
        gate.set()
        got = [f.result(timeout=10) for f in rest]
        assert np.allclose(lead.result(timeout=10), FakeEmbedder.embed_query(fake, "first"))
    for text, vec in zip(texts, got, strict=True):
        assert np.allclose(vec, FakeEmbedder.embed_query(fake, text))
    assert fake.batches == [15], "the questions that queued up were encoded in one batch"


def test_a_lone_question_is_encoded_at_once():
    fake = SlowFake()
    vec = QueryBatcher(fake).embed_query("octreotide")
    assert np.allclose(vec, FakeEmbedder.embed_query(fake, "octreotide")) and fake.batches == []


def test_errors_reach_every_caller_and_the_batcher_recovers():
    fake = SlowFake(fail_on="bad")
    batcher = QueryBatcher(fake)
    barrier = threading.Barrier(4)

    def ask(text: str):
        barrier.wait()
        try:
            return batcher.embed_query(text)
        except RuntimeError as exc:
            return exc

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(ask, ["bad", "a", "b", "c"]))
    assert isinstance(results[0], RuntimeError)
    assert np.allclose(batcher.embed_query("fine"), FakeEmbedder.embed_query(fake, "fine"))


def test_no_caller_waits_on_others_under_continuous_load():
    fake = SlowFake()
    batcher = QueryBatcher(fake, max_batch=4)
    stop = time.monotonic() + 1.0
    worst: list[float] = []

    def client(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            t0 = time.monotonic()
            batcher.embed_query(f"client {n} question {i}")
            worst.append(time.monotonic() - t0)
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads), "a caller was kept working for others"
    # a call waits for at most a few batches of 20 ms, never for the whole run
    assert max(worst) < 0.5


@pytest.mark.slow
def test_real_model_batches_match_single_encoding(real_embedder):
    texts = ["Milan criteria for liver transplantation", "kidney toxicity of PRRT"]
    batch = real_embedder.embed_queries(texts)
    for text, vec in zip(texts, batch, strict=True):
        assert np.allclose(vec, real_embedder.embed_query(text), atol=1e-5)


def test_an_embedder_with_only_the_two_required_methods_is_complete():
    fake = FakeEmbedder()  # implements embed_documents and embed_query only
    texts = ["hepatic resection", "lutetium dotatate"]
    many = fake.embed_queries(texts)
    assert many.shape == (2, fake.dimension)
    assert np.allclose(many[1], fake.embed_query(texts[1]))
    assert embedder_backend(fake) == "torch"
    assert QueryBatcher(fake).embed_query("octreotide").shape == (fake.dimension,)
