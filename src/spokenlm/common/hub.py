"""Model directories or Hugging Face hub ids: one resolver for every loader.

Wherever spokenlm takes a model directory (an encoder, a text or unit LM, a tokenizer, a
vocoder, an ASR or speaker model) it also takes a hub id, ``org/name`` or
``org/name@revision``. :func:`resolve_model_dir` turns either into a local directory:

- an existing local path is used as it is (a local folder always wins over a hub id);
- a hub id is looked up in the local Hugging Face cache only (``$HF_HUB_CACHE``, default
  ``~/.cache/huggingface/hub``: ``models--org--name/snapshots/<commit>/`` with
  ``refs/<revision>`` naming the commit): by default spokenlm never reaches for the network,
  so a mistyped relative path (``runs/lm``, which also reads as ``org/name``) fails at once;
- only with ``SPOKENLM_DOWNLOAD=1`` (and ``HF_HUB_OFFLINE`` unset) is a missing id
  downloaded, by ``huggingface_hub.snapshot_download``.

When neither works the error says how to get the model: ``huggingface-cli download
org/name`` on a machine with network, then pass the directory, or ``SPOKENLM_DOWNLOAD=1``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ArtifactError, InputError

#: ``org/name`` or ``org/name@revision`` (the hub's repo-id characters).
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def parse_hub_id(spec: str | os.PathLike) -> tuple[str, str | None] | None:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; None when ``spec`` cannot be a hub id
    (absolute or ``./`` paths, more than one ``/`` before the revision, ``..``)."""
    text = os.fspath(spec)
    if text.startswith(("/", "./", "../", "~")) or ".." in text.split("@")[0]:
        return None
    m = HUB_ID.match(text)
    return (m["repo"], m["revision"]) if m else None


def _true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def is_offline() -> bool:
    """True unless downloads were asked for (``SPOKENLM_DOWNLOAD=1``) and not forbidden
    (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``): hub ids come from the cache only."""
    return (not _true("SPOKENLM_DOWNLOAD")
            or any(_true(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")))


def cache_dir() -> str | None:
    """The hub cache the environment names now (``HF_HUB_CACHE``, else ``$HF_HOME/hub``),
    or None for huggingface_hub's default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def cached_snapshot(repo: str, revision: str | None = None) -> Path | None:
    """The snapshot dir of ``repo`` at ``revision`` (a branch or tag in ``refs/``, or a
    commit; default ``main``) in the local Hugging Face cache, or None when not cached."""
    root = Path(cache_dir() or Path("~/.cache/huggingface/hub").expanduser())
    root = root / f"models--{repo.replace('/', '--')}"
    rev = revision or "main"
    ref = root / "refs" / rev
    commit = ref.read_text().strip() if ref.is_file() else rev
    snap = root / "snapshots" / commit
    return snap if commit and "/" not in commit and snap.is_dir() else None


def resolve_model_dir(spec: str | os.PathLike, what: str = "model") -> Path:
    """A local directory for ``spec``: the path itself when it exists, else the snapshot of
    the hub id ``spec`` (see the module docstring). Raises :class:`InputError` naming
    ``spec`` and how to obtain it."""
    path = Path(os.fspath(spec)).expanduser()
    if path.exists():
        return path
    hub = parse_hub_id(spec)
    if hub is None:
        raise InputError(f"{spec}: {what} directory not found; pass an existing directory or "
                         f"a Hugging Face hub id (org/name[@revision])")
    repo, revision = hub
    how = (f"on a machine with network run `huggingface-cli download {repo}"
           f"{' --revision ' + revision if revision else ''}`, then pass the folder it prints")
    if is_offline():  # the cache's own layout, read here: no hub client, no network
        snap = cached_snapshot(repo, revision)
        if snap is not None:
            return snap
        raise InputError(f"{spec}: no such local {what} directory, and as a Hugging Face hub "
                         f"id it is not in the local Hugging Face cache (spokenlm downloads "
                         f"only with SPOKENLM_DOWNLOAD=1); if it is a hub model, {how} (or, "
                         f"with network here, set SPOKENLM_DOWNLOAD=1)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - transformers depends on it
        raise InputError(f"{spec}: downloading a hub id needs huggingface_hub "
                         f"(pip install huggingface_hub), or pass a local directory") from e
    try:
        return Path(snapshot_download(repo_id=repo, revision=revision, cache_dir=cache_dir()))
    except Exception as e:  # noqa: BLE001 - every failure gets the same advice
        raise InputError(f"{spec}: no such local {what} directory, and as a Hugging Face hub "
                         f"id it could not be downloaded ({type(e).__name__}); {how}") from e


def local_or_hub(spec: str | os.PathLike, what: str = "model") -> Path:
    """Like :func:`resolve_model_dir`, but a missing path that cannot be a hub id comes back
    unchanged, so the caller's own "not found" message (with its fix) is shown."""
    path = Path(os.fspath(spec)).expanduser()
    if path.exists() or parse_hub_id(spec) is None:
        return path
    return resolve_model_dir(spec, what)


@contextmanager
def loading(path: Path, what: str, fix: str) -> Iterator[None]:
    """Around ``from_pretrained`` calls of the directory ``path``: a transformers failure
    (``OSError``, ``ValueError``) becomes ``ArtifactError("{path}: cannot load {what} ({e});
    {fix}")``."""
    try:
        yield
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path}: cannot load {what} ({e}); {fix}") from e
