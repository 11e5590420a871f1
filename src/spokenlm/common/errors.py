"""Error types. Every message names the offending file or value and says how to fix it."""

from __future__ import annotations


class SpokenLMError(Exception):
    """Base class for errors a user can act on (bad input, mismatched artifacts)."""


class InputError(SpokenLMError, ValueError):
    """A user-supplied file or value is unusable; the message names it and the fix."""


class ArtifactError(SpokenLMError):
    """A saved artifact (tokenizer, LM, vocoder dir) is missing, corrupt or incompatible."""
