"""HuBERT-style encoder pretraining: span masking, k-means targets (MFCC, then the model's
own features), masked prediction over cosine-similarity logits.

Library API (``spokenlm ssl train`` on the CLI)::

    from spokenlm.ssl import train_ssl
    it1 = train_ssl(manifest="train.jsonl", output="ssl/it1", target_encoder="mfcc")
    it2 = train_ssl(manifest="train.jsonl", output="ssl/it2", target_encoder="hubert",
                    target_encoder_path=it1, target_layer=2)
    # it2 is a transformers HubertModel dir: encoder {"name": "hubert", "path": it2, ...}
"""

from __future__ import annotations

from .config import HeadConfig, hubert_config
from .masking import mask_runs, span_mask
from .model import HubertPretrainModel, SSLOutput
from .train import SSLTrainOptions, train_ssl

__all__ = ["HeadConfig", "HubertPretrainModel", "SSLOutput", "SSLTrainOptions",
           "hubert_config", "mask_runs", "span_mask", "train_ssl"]
