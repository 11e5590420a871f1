"""The judges' options, defined once: the ASR that transcribes resynthesised or generated
speech, the text LM that scores its transcripts and the speaker encoder that compares voices (``eval resynthesis``, ``eval
generation``, ``eval all``). Import-light (no torch), so ``--help`` stays fast."""

from __future__ import annotations

from typing import Any

from ..common.options import arg

#: the spec that picks the best judge installed (Whisper / GE2E), else the fallback
AUTO = "auto"

_ASR_HELP = ("ASR spec for transcripts: auto (whisper if installed, else pocketsphinx), "
             "whisper, whisper:DIR, pocketsphinx, ctc:DIR")


def asr_option(*, none_skips: bool = False) -> Any:
    """The ``--asr`` option (default ``auto``); ``none_skips``: ``none`` skips transcripts."""
    return arg(AUTO, help=_ASR_HELP + ("; none to skip transcripts" if none_skips else ""))


def text_lm_option() -> Any:
    """The ``--text-lm`` option: the text LM that scores ASR transcripts (PPX / GenPPL)."""
    return arg(None, help="local HF causal LM dir for PPX / GenPPL")


def speaker_encoder_option() -> Any:
    """The ``--speaker-encoder`` option of resynthesis speaker similarity (default ``auto``)."""
    return arg(AUTO, help="resynthesis speaker similarity: auto (ge2e if Resemblyzer is "
                          "installed), ge2e, ge2e:PATH, an HF x-vector model dir, none")
