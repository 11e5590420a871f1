"""Interop with checkpoints researchers already have (each a ``spokenlm interop`` command).

- :mod:`.fairseq_hubert`: fairseq HuBERT / mHuBERT ``.pt`` -> transformers ``HubertModel``
  directory (``interop hubert-import``), read without fairseq or omegaconf (:mod:`.checkpoint`).
- :mod:`.sklearn_kmeans`: scikit-learn (Mini)BatchKMeans pickled with joblib, as written by
  fairseq's ``simple_kmeans`` recipe and GSLM / TWIST / textlesslib, <-> spokenlm tokenizer
  directories (``interop kmeans-import`` / ``interop kmeans-export``).
- :mod:`.speech_resynthesis`: speech-resynthesis / fairseq / textlesslib unit HiFi-GAN
  generators (``g_XXXXXXXX`` + ``config.json``) <-> spokenlm ``hifigan`` vocoder directories
  (``interop vocoder-import`` / ``interop vocoder-export``).
"""
