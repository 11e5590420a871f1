"""Hub ids wherever a model directory is accepted, resolved offline from a Hugging Face cache
written here in the cache's real layout (blobs + snapshots/<commit> symlinks + refs)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import InputError
from spokenlm.common.hub import local_or_hub, parse_hub_id, resolve_model_dir
from spokenlm.lm.model import UnitLM
from spokenlm.testing.encoders import tiny_hubert_dir
from spokenlm.testing.lm import save_tiny_unit_lm
from spokenlm.tokenize.encoders import build_encoder

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cache_model(cache: Path, repo: str, src: Path, revision: str = "main") -> Path:
    """Copy the files of ``src`` into ``cache`` as huggingface_hub stores a download."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / COMMIT
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        data = f.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / revision).write_text(COMMIT)
    return snap


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_parse_hub_id() -> None:
    assert parse_hub_id("slprl/TWIST-350M") == ("slprl/TWIST-350M", None)
    assert parse_hub_id("facebook/hubert-base-ls960@v1.0") == ("facebook/hubert-base-ls960",
                                                               "v1.0")
    for not_hub in ("/abs/dir", "./rel/dir", "../x/y", "a/b/c", "plain", "~/m/x"):
        assert parse_hub_id(not_hub) is None, not_hub


def test_unit_lm_from_a_hub_id_offline(tmp_path: Path, offline_cache: Path) -> None:
    src = save_tiny_unit_lm(tmp_path / "lm", n_units=12)
    snap = cache_model(offline_cache, "someone/tiny-unit-lm", src)
    assert resolve_model_dir("someone/tiny-unit-lm") == snap
    lm = UnitLM.from_pretrained("someone/tiny-unit-lm")
    ref = UnitLM.from_pretrained(src)
    a = lm.log_likelihood([[1, 2, 3, 4]])[0]
    b = ref.log_likelihood([[1, 2, 3, 4]])[0]
    assert np.isclose(a.sum, b.sum)


def test_encoder_path_may_be_a_hub_id_with_revision(tmp_path: Path, offline_cache: Path) -> None:
    src = tiny_hubert_dir(tmp_path / "hb")
    cache_model(offline_cache, "someone/tiny-hubert", src, revision="v2")
    enc = build_encoder({"name": "hubert", "path": "someone/tiny-hubert@v2", "layer": 1})
    assert enc.dim == 32 and enc.options.path == "someone/tiny-hubert@v2"  # recorded as given


def test_missing_from_the_cache_says_how_to_download(offline_cache: Path) -> None:
    with pytest.raises(InputError, match=r"not in the local Hugging Face cache.*"
                                         r"huggingface-cli download nobody/absent"):
        resolve_model_dir("nobody/absent", "unit LM")


def test_local_directory_wins_and_missing_paths_keep_their_message(tmp_path: Path,
                                                                  offline_cache: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert local_or_hub("org/name") == Path("org/name")  # a local folder shadows the hub id
    assert local_or_hub(tmp_path / "nope") == tmp_path / "nope"  # caller reports it
    with pytest.raises(InputError, match="not found"):
        resolve_model_dir(tmp_path / "nope")


def test_no_download_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SPOKENLM_DOWNLOAD=1 a hub id (or a mistyped relative path that reads as one)
    never reaches the hub client, even with HF_HUB_OFFLINE unset; with it, the client is
    called to download (a stand-in here: no network in tests)."""
    import huggingface_hub

    calls: list[dict] = []

    def fake_download(**kw):
        calls.append(kw)
        return str(tmp_path / "downloaded")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("SPOKENLM_DOWNLOAD", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(InputError, match="SPOKENLM_DOWNLOAD=1"):
        resolve_model_dir("runs/lm", "unit LM")
    assert calls == []
    monkeypatch.setenv("SPOKENLM_DOWNLOAD", "1")
    assert resolve_model_dir("org/model@v1") == tmp_path / "downloaded"
    assert calls == [{"repo_id": "org/model", "revision": "v1",
                      "cache_dir": str(tmp_path / "empty-cache")}]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub's own switch still wins
    with pytest.raises(InputError, match="not in the local Hugging Face cache"):
        resolve_model_dir("org/other")
    assert len(calls) == 1


def test_the_test_session_is_offline() -> None:
    """tests/conftest.py turns downloads off for every test, even when the shell exported
    SPOKENLM_DOWNLOAD=1 or HF_HUB_OFFLINE=0."""
    from spokenlm.common.hub import is_offline

    assert is_offline() and os.environ["HF_HUB_OFFLINE"] == "1"
    assert "SPOKENLM_DOWNLOAD" not in os.environ
