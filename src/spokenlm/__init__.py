"""spokenlm: spoken language modelling from raw audio (and text).

Stages live in sub-packages named after the pipeline step: ``audio`` (load, validate,
manifests), ``data`` (corpora, synthetic speech, phonemes), ``tokenize`` (encoders, k-means,
units), ``lm`` (unit language models), ``vocoder`` (units back to audio), ``eval`` (metrics),
``pipeline`` (the end-to-end demo) and ``cli`` (one thin command per library function).
"""

__version__ = "0.1.0"
