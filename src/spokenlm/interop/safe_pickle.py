"""Unpickling with an allowlist: reading a checkpoint never runs its author's code.

A pickle names the globals it needs (``GLOBAL`` / ``STACK_GLOBAL`` opcodes) and calls them;
plain ``pickle.load`` / ``torch.load(weights_only=False)`` / ``joblib.load`` import and call
whatever the file names (``os.system``, ``builtins.eval``, ...). Here every global goes
through :func:`resolve_global`:

- ``fairseq``, ``omegaconf``, ``hydra`` and ``sklearn`` classes become inert stand-ins
  (:class:`Stub`) that only record the values the pickle gives
  them, so the checkpoints load without those packages and no method of theirs runs;
- the few real globals that tensors, numpy arrays and config containers need are allowed by
  exact name (:data:`ALLOWED_GLOBALS`, with the format each comes from);
- anything else stops the load at that opcode, before anything is called, with an
  :class:`UnsafePickleError` naming the global and the file; a user who trusts the file may
  add that exact global (``--allow-global module.name``), never lift the allowlist.

:func:`restricted_torch_load` reads fairseq ``.pt`` files this way; :func:`load_joblib`
reads scikit-learn k-means files written by ``joblib.dump`` (arrays stored after the pickle
opcodes, optionally zlib / gzip / bz2 / xz / lzma compressed) without joblib or scikit-learn.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import gzip
import importlib
import io
import lzma
import os
import pickle
import types
import zipfile
import zlib
from pathlib import Path
from collections.abc import Collection
from typing import Any, BinaryIO

import numpy as np

from ..common.errors import InputError

class Stub:
    """Stand-in for a class the unpickler cannot or should not import.

    Records constructor arguments (enums and ``__reduce__``-style objects are rebuilt as
    ``cls(*args)``) and the pickled state (``__setstate__``), so :func:`to_plain` can recover
    the values: omegaconf containers keep theirs in ``_content``, nodes in ``_val``.
    """

    _stub_module: str = ""
    _stub_name: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stub_args = args
        self._stub_kwargs = kwargs
        self._stub_state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        obj = super().__new__(cls)
        obj._stub_args, obj._stub_kwargs, obj._stub_state = args, kwargs, None
        return obj

    def __setstate__(self, state: Any) -> None:
        self._stub_state = state

    def __repr__(self) -> str:
        return f"<stub {self._stub_module}.{self._stub_name}>"


_STUB_CLASSES: dict[tuple[str, str], type[Stub]] = {}


def stub_class(module: str, name: str) -> type[Stub]:
    """The (cached) :class:`Stub` subclass standing in for ``module.name``."""
    key = (module, name)
    if key not in _STUB_CLASSES:
        _STUB_CLASSES[key] = type(name, (Stub,), {"_stub_module": module, "_stub_name": name})
    return _STUB_CLASSES[key]


#: Top-level modules whose classes are replaced by inert stand-ins (values recorded only).
STUB_MODULES: tuple[str, ...] = ("fairseq", "omegaconf", "hydra", "sklearn")

_TORCH_DTYPES = ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32",
                 "int64", "uint8", "bool", "complex64", "complex128")
#: numpy 2.x / 1.x names of the same module (numpy 2 keeps ``numpy.core`` as a deprecated alias)
_NUMPY_CORE = ("numpy._core", "numpy.core")

#: Global -> the on-disk format that needs it. Nothing here executes code chosen by the file:
#: constructors of plain values and containers, and torch / numpy array rebuilders.
ALLOWED_GLOBALS: dict[str, str] = {
    # torch.save (zip and legacy formats): tensors, parameters, state dicts
    "torch._utils._rebuild_tensor": "torch.save, legacy tensors",
    "torch._utils._rebuild_tensor_v2": "torch.save tensors",
    "torch._utils._rebuild_parameter": "torch.save nn.Parameter",
    "torch._utils._rebuild_parameter_with_state": "torch.save nn.Parameter with state",
    "torch.Size": "torch.save tensor shapes",
    "collections.OrderedDict": "torch state dicts",
    **{f"torch.{d}": "torch.save dtypes" for d in _TORCH_DTYPES},
    # fairseq configs: legacy argparse args; omegaconf DictConfig metadata
    "argparse.Namespace": "fairseq < 0.10 'args'",
    "collections.defaultdict": "omegaconf container metadata (resolver cache)",
    "typing.Any": "omegaconf node metadata (ref/key/element types)",
    "typing.List": "omegaconf node metadata",
    "typing.Dict": "omegaconf node metadata",
    "typing.Tuple": "omegaconf node metadata",
    "typing.Optional": "omegaconf node metadata",
    "typing.Union": "omegaconf node metadata",
    "_operator.getitem": "omegaconf node metadata (typing.List[str] and the like)",
    "operator.getitem": "omegaconf node metadata (typing.List[str] and the like)",
    "builtins.dict": "omegaconf metadata object_type; plain containers",
    "builtins.list": "omegaconf metadata object_type; plain containers",
    "builtins.tuple": "plain containers",
    "builtins.set": "plain containers",
    "builtins.frozenset": "plain containers",
    "builtins.int": "omegaconf metadata element types",
    "builtins.float": "omegaconf metadata element types",
    "builtins.str": "omegaconf metadata element types",
    "builtins.bool": "omegaconf metadata element types",
    "builtins.bytes": "omegaconf metadata element types",
    "builtins.complex": "plain values",
    "builtins.slice": "plain values",
    "builtins.object": "omegaconf metadata (untyped containers)",
    "_codecs.encode": "protocol-2 pickles of bytes (numpy scalars in torch.save)",
    # numpy arrays and scalars (fairseq extra_state, scikit-learn attributes)
    "numpy.ndarray": "numpy arrays",
    "numpy.dtype": "numpy dtypes",
    **{f"{core}.multiarray._reconstruct": "numpy array pickles" for core in _NUMPY_CORE},
    **{f"{core}.multiarray.scalar": "numpy scalar pickles" for core in _NUMPY_CORE},
    **{f"{core}.numeric._frombuffer": "numpy arrays, pickle protocol 5" for core in _NUMPY_CORE},
    "numpy.random._pickle.__randomstate_ctor": "scikit-learn random_state=RandomState(...)",
    "numpy.random._pickle.__bit_generator_ctor": "scikit-learn random_state=RandomState(...)",
    "numpy.random._mt19937.MT19937": "scikit-learn random_state=RandomState(...)",
    # joblib: array metadata, the array bytes follow the pickle opcode (see load_joblib)
    "joblib.numpy_pickle.NumpyArrayWrapper": "joblib.dump arrays (joblib >= 0.10)",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper":
        "joblib.dump arrays (scikit-learn < 0.23's bundled joblib)",
}

_WRAPPERS = {"joblib.numpy_pickle.NumpyArrayWrapper",
             "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper"}
_LEGACY_JOBLIB = {"NDArrayWrapper", "ZNDArrayWrapper"}


#: The ``--allow-global`` help of every command that reads pickles.
ALLOW_GLOBAL_HELP = ("module.name globals to allow besides spokenlm's allowlist (the refusal "
                     "names the one a file needs); an allowed global is imported and may be "
                     "called by the file: only for files from someone you trust")


class UnsafePickleError(InputError):
    """A pickle names a global outside the allowlist; nothing from the file was executed."""


class ArrayWrapper:
    """Stand-in for joblib's ``NumpyArrayWrapper``: records shape, order and dtype."""

    shape: tuple[int, ...] = ()
    order: str = "C"
    dtype: np.dtype = np.dtype("float64")
    numpy_array_alignment_bytes: int | None = None


def resolve_global(module: str, name: str, file: str | os.PathLike,
                   allowed: Collection[str] = ()) -> Any:
    """The object a pickle's ``module.name`` global may stand for, or raise. ``allowed``:
    exact ``module.name`` globals the user added to :data:`ALLOWED_GLOBALS` for this file.

    Protocol < 3 pickles spell Python 2 names (``__builtin__.dict``); they are mapped the
    way :class:`pickle.Unpickler` maps them (no Python 3 module has those names, so the
    mapping is applied whatever the protocol) before the allowlist is consulted.
    """
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    key = f"{module}.{name}"
    if key in _WRAPPERS:
        return ArrayWrapper
    if name in _LEGACY_JOBLIB and module.split(".")[-1].startswith("numpy_pickle"):
        raise UnsafePickleError(
            f"{file}: written by joblib < 0.10 (arrays in side files, {key}), which cannot be "
            f"read with the allowlist; re-save it with a current joblib.dump")
    if module.split(".")[0] in STUB_MODULES:
        return stub_class(module, name)
    if key not in ALLOWED_GLOBALS and key not in allowed:
        raise UnsafePickleError(
            f"{file}: refusing to unpickle global {key!r} (not on spokenlm's allowlist of "
            f"the globals fairseq / scikit-learn / numpy / torch files need; loading it could "
            f"run code chosen by the file's author); nothing from the file was executed. "
            f"Pass --allow-global {key} only if you trust who wrote the file")
    for candidate in _spellings(module):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise UnsafePickleError(f"{file}: allowed global {key!r} does not exist in this "
                            f"environment's packages; re-save the file with current versions")


def _spellings(module: str) -> list[str]:
    """Where to import ``module`` from: numpy's core under either version's name
    (``numpy._core`` first, so numpy 2 does not warn), anything else as named."""
    for core in _NUMPY_CORE:
        if module == core or module.startswith(core + "."):
            rest = module[len(core):]
            return [other + rest for other in _NUMPY_CORE]
    return [module]


def restricted_unpickler_class(file: str | os.PathLike, allowed: Collection[str] = ()
                               ) -> type[pickle.Unpickler]:
    """A C ``pickle.Unpickler`` subclass whose ``find_class`` is :func:`resolve_global`."""

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return resolve_global(module, name, file, allowed)

    return RestrictedUnpickler


def restricted_pickle_module(file: str | os.PathLike, allowed: Collection[str] = ()
                             ) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load``: torch subclasses its ``Unpickler`` (keeping
    this ``find_class`` for every global but storage types) and calls its ``load`` for the
    legacy format's headers."""
    unpickler = restricted_unpickler_class(file, allowed)
    mod = types.ModuleType("spokenlm_restricted_pickle")
    mod.Unpickler = unpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: unpickler(f, **kw).load()  # type: ignore[attr-defined]
    mod.__dict__["__version__"] = getattr(pickle, "format_version", "4.0")
    return mod


def restricted_torch_load(path: str | os.PathLike, allowed: Collection[str] = ()) -> Any:
    """``torch.load`` of ``path`` on the CPU with every global checked by the allowlist
    (plus the exact ``allowed`` globals).

    TorchScript archives are refused first (``torch.load`` would hand them to
    ``torch.jit.load``, which runs code from the archive).
    """
    import torch

    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any(n.endswith("constants.pkl") for n in z.namelist()):
                raise UnsafePickleError(f"{path}: a TorchScript archive, not a torch.save "
                                        f"checkpoint; pass the .pt file fairseq's trainer wrote")
    # weights_only=False hands unpickling to the restricted module: torch's own allowlist
    # cannot stand fairseq / omegaconf classes in for inert stubs.
    return torch.load(path, map_location="cpu", weights_only=False,
                      pickle_module=restricted_pickle_module(path, allowed))


# -- joblib ------------------------------------------------------------------------------

#: Magic prefixes of the compressors ``joblib.dump(compress=...)`` writes.
_COMPRESSED = {b"\x78": "zlib", b"\x1f\x8b": "gzip", b"BZ": "bz2", b"\xfd7zXZ": "xz",
               b"]\x00\x00": "lzma", b'\x04"M\x18': "lz4", b"ZF": "joblib < 0.10 zfile"}


def _open_joblib(path: Path) -> BinaryIO:
    raw = path.read_bytes()
    kind = next((k for m, k in _COMPRESSED.items() if raw.startswith(m)), None)
    try:
        if kind == "zlib":
            raw = zlib.decompress(raw)
        elif kind == "gzip":
            raw = gzip.decompress(raw)
        elif kind == "bz2":
            raw = bz2.decompress(raw)
        elif kind in ("xz", "lzma"):
            raw = lzma.decompress(raw)
        elif kind is not None:
            raise InputError(f"{path}: compressed as {kind}, which spokenlm does not read; "
                             f"re-save it with joblib.dump(model, path) (no compression)")
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as e:
        raise InputError(f"{path}: looks {kind}-compressed but does not decompress ({e}); "
                         f"the file is truncated or corrupt") from e
    return io.BytesIO(raw)


class _JoblibUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Pure-Python unpickler (its opcode table can be extended) that reads joblib's arrays:
    after the ``BUILD`` of a ``NumpyArrayWrapper``, the array's bytes follow in the stream."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: BinaryIO, path: Path, allowed: Collection[str] = ()) -> None:
        super().__init__(file)
        self._file, self._path, self._allowed = file, path, allowed

    def find_class(self, module: str, name: str) -> Any:
        return resolve_global(module, name, self._path, self._allowed)

    def load_build(self) -> None:
        if isinstance(self.stack[-2], type):  # setting attributes on a class, not an object
            raise UnsafePickleError(f"{self._path}: the pickle sets attributes of the class "
                                    f"{self.stack[-2].__qualname__}; not a joblib.dump file")
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        if isinstance(self.stack[-1], ArrayWrapper):
            self.stack[-1] = self._read_array(self.stack[-1])

    dispatch[pickle.BUILD[0]] = load_build

    def _read_array(self, w: ArrayWrapper) -> np.ndarray:
        dtype, shape = np.dtype(w.dtype), tuple(int(s) for s in w.shape)
        if dtype.hasobject:  # pickled inline; same allowlist
            inner = _JoblibUnpickler(self._file, self._path, self._allowed)
            return np.asarray(inner.load(), dtype=dtype)
        if w.numpy_array_alignment_bytes is not None:
            pad = self._file.read(1)
            self._file.read(int.from_bytes(pad, "little"))
        count = int(np.prod(shape, dtype=np.int64))
        data = self._file.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise InputError(f"{self._path}: truncated (array of shape {shape} ends early); "
                             f"copy the file again")
        array = np.frombuffer(data, dtype=dtype).copy()
        if w.order == "F":
            return array.reshape(shape[::-1]).transpose()
        return array.reshape(shape)


def load_joblib(path: str | os.PathLike, allowed: Collection[str] = ()) -> Any:
    """Load a ``joblib.dump`` file with the allowlist (plus the exact ``allowed`` globals);
    scikit-learn estimators come back as :class:`Stub` instances holding their attributes."""
    path = Path(path)
    with _open_joblib(path) as f:
        return _JoblibUnpickler(f, path, allowed).load()


def stub_state(obj: Any) -> dict[str, Any]:
    """The attribute dict a stand-in received (an estimator's ``__getstate__``), or {}."""
    if isinstance(obj, Stub) and isinstance(obj._stub_state, dict):
        return obj._stub_state
    return {}
