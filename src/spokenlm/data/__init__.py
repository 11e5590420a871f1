"""Corpora and text: the synthetic corpus maker and what it is built from.

- :mod:`~spokenlm.data.vocabulary`: curated English words with forms and CMUdict phonemes
- :mod:`~spokenlm.data.grammar`: the sentence generator (with agreement records for minimal
  pairs): ``generate_sentences(n, seed)``
- :mod:`~spokenlm.data.phonemes`: G2P (espeak-ng ``phonemize``, ``cmudict_phonemes``)
- :mod:`~spokenlm.data.tts`: espeak-ng speakers and ``speak(texts, speaker, out_paths)``
- :mod:`~spokenlm.data.synth`: ``spokenlm data synth`` -> ``synth_corpus(SynthOptions)``;
  with ``--text``/``--stories``, :mod:`~spokenlm.data.synth_documents` (a corpus of documents,
  split by :mod:`~spokenlm.data.text_split`)
- :mod:`~spokenlm.data.preference`: SpokenSwag-style DPO pairs (``data bench build --generate
  preference``)
- :mod:`~spokenlm.data.pseudowords`: Wuggy-style pseudo-words for spot-the-word
- :mod:`~spokenlm.data.alignments`: phone/word intervals from TextGrids (MFA), CTM, JSONL:
  ``read_alignments(path, tier)``
"""
