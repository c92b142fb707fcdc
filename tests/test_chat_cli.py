"""`assistant chat`: piped line-per-question mode, and the interactive shell in a real terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app

ASSISTANT_BIN = Path(sys.executable).parent / "assistant"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def chat(monkeypatch, settings, fake_embedder):
    """Run `assistant chat` in-process on the fixture corpus with the fake embedder."""
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: fake_embedder)
    monkeypatch.setenv("ASSISTANT_ABSTAIN_THRESHOLD", "0.2")
    monkeypatch.setenv("ASSISTANT_CHAT_SAVE_HISTORY", "false")
    args = ["chat", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]

    def run(text: str, *extra: str):
        return CliRunner().invoke(app, [*args, *extra], input=text)

    return run


def test_piped_questions_get_plain_answers_and_commands_work(chat, tmp_path):
    note = tmp_path / "note.md"
    lines = [
        "What is the kidney toxicity of lutetium PRRT?",
        "and what about its survival benefit?",
        "/show 1",
        "/more",
        "/sources",
        "/history",
        "/filter year>=2010 type=rct",
        "/mode bm25",
        "/shwo 1",
        f"/export {note}",
        "/quit",
        "this line is never asked",
    ]
    result = chat("\n".join(lines) + "\n", "-k", "2")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # plain, uncoloured
    assert out.count("Q: ") == 2 and "Answer: " in out and "Sources:" in out
    assert "searched: and what about its survival benefit? " in out
    assert "Section: " in out and ">>> " in out  # /show 1
    assert "\n  [3] " in out  # /more continues the numbering
    assert "(rct)" in out or "(review)" in out or "(cohort)" in out  # /sources
    assert "2. and what about its survival benefit?  (searched: " in out  # /history
    assert "filters: year ≥ 2010, type rct" in out and "mode: bm25" in out
    assert "unknown command /shwo: did you mean /show?" in out
    assert f"transcript written to {note}" in out
    assert "never asked" not in out
    assert "## References" in note.read_text(encoding="utf-8")
    err = result.stderr
    assert err.count("not a substitute for clinical judgement") == 1
    assert "sources," in err and "chunks" in err  # the banner


def test_errors_in_a_turn_are_one_line_and_the_shell_goes_on(chat):
    result = chat("/filter year>=soon\n/show 1\n/more\nWhat is PRRT kidney toxicity?\n")
    assert result.exit_code == 0
    assert "error: cannot read the year in 'year>=soon' — write a four-digit year" in result.stderr
    assert "error: there is no answer yet" in result.stderr
    assert "error: there is no question yet" in result.stderr
    assert "Answer: " in result.stdout


def test_cite_in_the_shell_prints_or_writes_references_and_the_banner_stamps(chat, tmp_path):
    import rispy

    refs = tmp_path / "refs.ris"
    lines = ["What is the kidney toxicity of lutetium PRRT?", "/sources", "/cite ris", f"/cite ris {refs}",
             f"/cite ris {refs}", f"/cite bibtex {tmp_path}"]  # fmt: skip
    result = chat("\n".join(lines) + "\n", "-k", "3")
    assert result.exit_code == 0, result.stderr
    assert "TY  - " in result.stdout and f"references written to {refs}" in result.stdout
    assert "Fixture Med 2017. PMID 67890. (after the 2012 review)" in result.stdout  # /sources
    assert "2017 (after 2012)" in result.stdout  # the answer's sources list
    assert [r["id"] for r in rispy.loads(refs.read_text(encoding="utf-8"))]
    assert "already exists; it was not overwritten" in result.stderr
    assert "is a folder" in result.stderr
    assert "corpus snapshot " in result.stderr and "newest source 2017" in result.stderr


def test_bad_option_is_one_line_error(chat):
    result = chat("", "--mode", "fuzzy")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown mode 'fuzzy'")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(HOME=str(tmp_path), TERM="xterm-256color", COLUMNS="120", LINES="40")
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"  # pexpect does not answer cursor-position requests
    env["ASSISTANT_CHAT_HISTORY_FILE"] = str(tmp_path / "history")
    return env


@pytest.mark.slow
def test_piped_subprocess_with_real_model(real_assistant, tmp_path):
    s = real_assistant.settings
    proc = subprocess.run(
        [str(ASSISTANT_BIN), "chat", "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)],
        input="How is kidney toxicity of lutetium PRRT limited?\nand in midgut tumours?\n",
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout
    assert proc.stdout.count("Q: ") == 2
    assert "searched: and in midgut tumours? " in proc.stdout
    assert "PMID 67890" in proc.stdout  # the PRRT fixture study is cited


@pytest.mark.slow
def test_interactive_shell_in_a_pseudo_terminal(real_assistant, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    s = real_assistant.settings
    note = tmp_path / "note.md"
    child = pexpect.spawn(
        str(ASSISTANT_BIN),
        ["chat", "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)],
        env=_env(tmp_path),
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=60,
    )
    screen: list[str] = []

    def expect(pattern: str) -> None:
        child.expect(pattern)
        screen.append(ANSI.sub("", child.before + child.after))

    try:
        expect("Reminder")
        expect(r"4 sources, \d+ chunks")
        expect("ask›")
        child.sendline("How is kidney toxicity of lutetium PRRT limited?")
        expect("Sources")
        expect("PMID 67890")
        expect("ask›")
        child.sendline("and what about its survival benefit?")
        expect("searched: and what about its survival benefit\\? ")
        expect("ask›")
        child.sendline("/show 1")
        expect("Section: ")
        expect("ask›")
        child.send("half-typed question")
        child.sendcontrol("c")  # cancels the line: "/nope" below is read as a command
        expect("ask›")
        child.sendline("/nope")
        expect("unknown command /nope")
        expect("ask›")
        child.sendline(f"/export {note}")
        expect("transcript written to")
        expect("ask›")
        child.sendline("/quit")
        expect("Goodbye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    text = "".join(screen)
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert flat.count("not a substitute for clinical judgement") == 1  # reminder, once
    assert "Answer" in text and "first author" in text
    assert child.exitstatus == 0
    transcript = note.read_text(encoding="utf-8")
    assert "## 2. and what about its survival benefit?" in transcript
    assert "## References" in transcript
    history = (tmp_path / "history").read_text(encoding="utf-8")
    assert "How is kidney toxicity of lutetium PRRT limited?" in history


def test_no_rebuild_uses_the_stale_index_with_a_warning(corpus_dir, tmp_path, monkeypatch):
    from helpers import FakeEmbedder
    from typer.testing import CliRunner

    from assistant.cli import app

    fake = FakeEmbedder()
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: fake)
    monkeypatch.setattr("assistant.lifecycle.describe_model", lambda n: (n, fake.fingerprint))
    args = ["--corpus", str(corpus_dir), "--index", str(tmp_path / "idx")]
    runner = CliRunner()
    assert runner.invoke(app, ["index", *args]).exit_code == 0
    note = corpus_dir / "prrt-study.md"
    note.write_text(note.read_text().replace("65%", "66%"), encoding="utf-8")
    result = runner.invoke(app, ["chat", "--no-rebuild", *args], input="/quit\n")
    assert result.exit_code == 0, result.output
    assert "corpus changed" in result.stderr
    from assistant.index import load_index

    assert not any("66%" in c.text for c in load_index(tmp_path / "idx").chunks)
