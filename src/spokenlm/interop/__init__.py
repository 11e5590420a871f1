"""Interop with checkpoints researchers already have (each a ``spokenlm convert`` command).

- :mod:`.fairseq_hubert`: fairseq HuBERT / mHuBERT ``.pt`` -> transformers ``HubertModel``
  directory (``convert hubert``), read without fairseq or omegaconf (:mod:`.checkpoint`).
- :mod:`.sklearn_kmeans`: scikit-learn (Mini)BatchKMeans pickled with joblib, as written by
  fairseq's ``simple_kmeans`` recipe and GSLM / TWIST / textlesslib, <-> spokenlm tokenizer
  directories (``convert kmeans-import`` / ``convert kmeans-export``).
- :mod:`.speech_resynthesis`: speech-resynthesis / fairseq / textlesslib unit HiFi-GAN
  generators (``g_XXXXXXXX`` + ``config.json``) <-> spokenlm ``hifigan`` vocoder directories
  (``convert vocoder-import`` / ``convert vocoder-export``).
"""
