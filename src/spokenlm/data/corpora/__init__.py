"""Importers of real speech corpora (LibriSpeech, Libri-Light, ...) into spokenlm manifests,
and voice activity detection to cut long recordings into segments."""
