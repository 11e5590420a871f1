"""The options SpeechLM and SLAM pretraining share (``joint speechlm train``, ``joint slam
train``): the unpaired text, the trunk's sizes, the speech masking span, the batch sizes and
the training loop. Each command's options extend :class:`SpeechTextOptions`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.options import arg
from ..training import TrainerOptions
from .data import TEXT_SEED, unpaired_text
from .loop import JOINT_TRAINER


@dataclass(kw_only=True)
class SpeechTextOptions:
    """Unpaired text, model sizes, batches and trainer of a joint speech+text pretraining."""

    text_file: Path | None = arg(None, help="unpaired text, one sentence per line")
    text_sentences: int = arg(2000, help="unpaired sentences (from the grammar when no file)")
    text_seed: int = arg(TEXT_SEED, help="grammar seed of the unpaired text")
    hidden: int = arg(96, help="model width")
    heads: int = arg(4, help="attention heads")
    conv_dim: int = arg(64, help="conv front-end channels")
    mask_length: int = arg(10, help="speech span length in frames")
    batch_size: int = arg(8, help="speech utterances per step")
    text_batch_size: int = arg(8, help="text sentences per step")
    dropout: float = arg(0.0, help="dropout")
    trainer: TrainerOptions = arg(JOINT_TRAINER, help="training loop options")

    def unpaired_text(self, exclude: list[str]) -> list[dict]:
        """The unpaired sentences (:func:`~spokenlm.joint.data.unpaired_text`), none of
        ``exclude`` (the transcripts of the speech)."""
        return unpaired_text(self.text_sentences, self.text_seed, self.text_file,
                             exclude=exclude)

    def trunk(self, speech_layers: int, shared_layers: int) -> dict[str, Any]:
        """The :class:`~spokenlm.joint.blocks.TrunkConfig` fields of these options
        (feed-forward width 4 x ``hidden``)."""
        return {"hidden": self.hidden, "heads": self.heads, "ffn": 4 * self.hidden,
                "conv_dim": self.conv_dim, "speech_layers": speech_layers,
                "shared_layers": shared_layers, "dropout": self.dropout}
