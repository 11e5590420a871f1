"""The global allowlist: crafted checkpoints are refused before anything in them runs."""

from __future__ import annotations

import argparse
import builtins
import os
import subprocess
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import torch

from spokenlm.cli.main import main
from spokenlm.interop.checkpoint import load_fairseq_checkpoint
from spokenlm.interop.safe_pickle import (ALLOWED_GLOBALS, UnsafePickleError, load_joblib,
                                          resolve_global, stub_state)
from spokenlm.interop.sklearn_kmeans import load_sklearn_centroids
from spokenlm.testing.fairseq import tiny_fairseq_hubert


class Payload:
    """Unpickling calls ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, Payload]:
    cmd = f"touch {marker}"
    return {
        "os.system": Payload(os.system, cmd),
        "subprocess.Popen": Payload(subprocess.Popen, ["touch", str(marker)]),
        "subprocess.check_call": Payload(subprocess.check_call, ["touch", str(marker)]),
        "builtins.eval": Payload(builtins.eval, f"open({str(marker)!r}, 'w')"),
        "builtins.exec": Payload(builtins.exec, f"open({str(marker)!r}, 'w')"),
        "builtins.__import__": Payload(builtins.__import__, "os"),
        "builtins.getattr": Payload(getattr, "x", "upper"),
        "torch.storage._load_from_bytes": Payload(torch.storage._load_from_bytes, b"x"),
    }


@pytest.mark.parametrize("name", list(_payloads(Path("x"))))
def test_crafted_torch_checkpoint_is_refused_before_it_runs(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    ckpt = {"model": OrderedDict(w=torch.zeros(2)), "cfg": None, "args": None,
            "extra_state": {"x": _payloads(marker)[name]}}
    path = tmp_path / "evil.pt"
    torch.save(ckpt, path)
    with pytest.raises(UnsafePickleError, match="evil.pt") as err:
        load_fairseq_checkpoint(path)
    assert "refusing to unpickle global" in str(err.value)
    global_name = str(err.value).split("'")[1]
    assert global_name.split(".")[-1] in name  # os.system pickles as posix.system
    assert not marker.exists()


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_crafted_joblib_file_is_refused_before_it_runs(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "km.bin"
    joblib.dump({"cluster_centers_": np.zeros((2, 2)), "x": _payloads(marker)[name]}, path)
    with pytest.raises(UnsafePickleError, match="km.bin"):
        load_sklearn_centroids(path)
    assert not marker.exists()


def test_cli_refuses_a_crafted_checkpoint_with_one_line(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "hubert.pt"
    torch.save({"model": {}, "evil": Payload(os.system, f"touch {marker}")}, path)
    assert main(["interop", "hubert-import", str(path), "--output", str(tmp_path / "hf")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hubert.pt" in err and "posix.system" in err
    assert "--allow-global posix.system" in err and not marker.exists()


def test_allow_global_adds_exactly_the_named_global(tmp_path: Path) -> None:
    """--allow-global extends the allowlist by the named global only: a file that also
    names another one is still refused, before anything runs (there is no way to lift the
    allowlist as a whole)."""
    path = tmp_path / "odd.pt"
    torch.save({"model": {"w": torch.ones(1)}, "extra": Payload(complex, 1, 2),
                "when": Payload(bytearray, b"ab")}, path)
    with pytest.raises(UnsafePickleError, match="--allow-global builtins.bytearray"):
        load_fairseq_checkpoint(path)
    ckpt = load_fairseq_checkpoint(path, allow_globals=["builtins.bytearray"])
    assert ckpt["when"] == bytearray(b"ab")
    marker = tmp_path / "pwned"
    both = tmp_path / "both.pt"
    torch.save({"model": {}, "when": Payload(bytearray, b"ab"),
                "evil": Payload(os.system, f"touch {marker}")}, both)
    with pytest.raises(UnsafePickleError, match="posix.system"):
        load_fairseq_checkpoint(both, allow_globals=["builtins.bytearray"])
    assert not marker.exists()


def test_real_layouts_load(tmp_path: Path) -> None:
    """Tensors of every dtype, Parameters, numpy scalars and arrays, legacy args, and the
    legacy (non-zip) torch format all pass the allowlist."""
    state = OrderedDict(a=torch.randn(3, 2), b=torch.ones(2, dtype=torch.bfloat16),
                        c=torch.arange(4), d=torch.randn(2).half(), e=torch.zeros(1) > 0)
    extra = {"p": torch.nn.Parameter(torch.randn(2)), "np": np.float64(1.5),
             "npa": np.arange(3), "size": torch.Size([2, 3]), "dtype": torch.float16,
             "set": {1, 2}, "tup": (1, "x")}
    for zip_format in (True, False):
        path = tmp_path / f"ok{zip_format}.pt"
        torch.save({"model": state, "args": argparse.Namespace(arch="hubert", lr=[1e-4]),
                    "extra_state": extra}, path, _use_new_zipfile_serialization=zip_format)
        ckpt = load_fairseq_checkpoint(path)
        for k, v in state.items():
            assert torch.equal(ckpt["model"][k], v)
        assert ckpt["args"] == {"arch": "hubert", "lr": [1e-4]}
        assert ckpt["extra_state"]["np"] == 1.5 and ckpt["extra_state"]["dtype"] is torch.float16
        np.testing.assert_array_equal(ckpt["extra_state"]["npa"], np.arange(3))


def test_fairseq_replica_loads(tmp_path: Path) -> None:
    for style in ("dict", "args"):
        path = tiny_fairseq_hubert(tmp_path / f"{style}.pt", cfg_style=style)
        assert "encoder.layers.0.fc1.weight" in load_fairseq_checkpoint(path)["model"]


def test_torchscript_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    assert zipfile.is_zipfile(path)
    with pytest.raises(UnsafePickleError, match="TorchScript"):
        load_fairseq_checkpoint(path)


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_joblib_formats(tmp_path: Path, compress: Any) -> None:
    """Every stdlib compressor joblib.dump writes, object arrays, Fortran order, RandomState."""
    from sklearn.cluster import MiniBatchKMeans

    x = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    km = MiniBatchKMeans(n_clusters=5, n_init=1, batch_size=100,
                         random_state=np.random.RandomState(0)).fit(x)
    path = tmp_path / "km.bin"
    joblib.dump(km, path, compress=compress)
    loaded = load_joblib(path)
    np.testing.assert_array_equal(stub_state(loaded)["cluster_centers_"], km.cluster_centers_)
    other = {"f": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
             "o": np.array([{"a": 1}, "s"], dtype=object), "scalar": np.float32(2.5)}
    joblib.dump(other, path, compress=compress)
    back = load_joblib(path)
    np.testing.assert_array_equal(back["f"], other["f"])
    assert back["o"].tolist() == [{"a": 1}, "s"] and back["scalar"] == np.float32(2.5)


def test_truncated_and_hostile_joblib(tmp_path: Path) -> None:
    path = tmp_path / "km.bin"
    joblib.dump({"cluster_centers_": np.zeros((100, 8))}, path)
    data = path.read_bytes()
    (tmp_path / "short.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="short.bin"):
        load_sklearn_centroids(tmp_path / "short.bin")
    # a pickle that sets attributes on an allowed class (class pollution) is refused
    evil = b"\x80\x02cargparse\nNamespace\nN}X\x08\x00\x00\x00__repr__cbuiltins\nstr\ns\x86b."
    (tmp_path / "build.bin").write_bytes(evil)
    with pytest.raises(UnsafePickleError, match="class"):
        load_joblib(tmp_path / "build.bin")


def test_allowlist_entries_resolve_and_python2_names_map() -> None:
    for key in ALLOWED_GLOBALS:
        module, _, name = key.rpartition(".")
        if module.startswith("numpy.core") or "joblib" in module:
            continue  # numpy 1.x spelling / joblib wrapper stand-in
        assert resolve_global(module, name, "f") is not None, key
    assert resolve_global("__builtin__", "unicode", "f") is str
    with pytest.raises(UnsafePickleError):
        resolve_global("__builtin__", "eval", "f")


def test_stubbed_classes_only_record() -> None:
    """fairseq / sklearn classes stay stand-ins: their code (``__setstate__``) never runs."""
    stub = resolve_global("sklearn.cluster._kmeans", "MiniBatchKMeans", "f")
    obj = stub.__new__(stub)
    obj.__setstate__({"cluster_centers_": 1})
    assert stub_state(obj) == {"cluster_centers_": 1}
    assert not hasattr(stub, "fit")
