"""Tiny builders for interleaved speech-text tests: a text LM dir, toy aligned "speech",
and a spoken cloze benchmark with the text of every wav."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..common.files import write_json, write_jsonl
from .audio import random_speech_like_wav, write_test_manifest


def save_tiny_text_lm(path: str | os.PathLike, sentences: Sequence[str], seed: int = 0,
                      level: str = "word") -> Path:
    """A random tiny LLaMA text LM dir in the layout of ``spokenlm lm pretrain-text``
    (HF model files + ``text_tokenizer.json``, vocabulary = the sentences' words + 3)."""
    import torch
    from transformers import LlamaForCausalLM

    from ..lm.config import LMConfig, build_llama_config
    from ..lm.text_tokenizer import TOKENIZER_FILE, TextTokenizer

    tok = TextTokenizer.fit(list(sentences), level)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(build_llama_config(len(tok), LMConfig.named("tiny")))
    path = Path(path)
    model.save_pretrained(path)
    tok.save(path / TOKENIZER_FILE)
    return path


def word_units(word: str, n_units: int, length: int = 3) -> list[int]:
    """A fixed unit pattern per word (units 1..K-1; 0 is silence): toy speech in which the
    units say which word was spoken."""
    h = zlib.crc32(word.encode())
    return [1 + (h // (7 ** k)) % (n_units - 1) for k in range(length)]


def toy_aligned_rows(sentences: Sequence[str], n_units: int, frame_rate: float = 50.0,
                     frames_per_unit: int = 3, pause_frames: int = 5
                     ) -> tuple[list[dict], list[dict]]:
    """(units rows, labels rows) of toy utterances: silence (unit 0), then each word's units
    (:func:`word_units`, ``frames_per_unit`` frames each), silence again; the labels JSONL
    rows give each word's interval, as an aligner would."""
    units_rows, label_rows = [], []
    for i, sentence in enumerate(sentences):
        uid = f"utt{i:03d}"
        units, durations = [0], [pause_frames]
        intervals = [[0.0, pause_frames / frame_rate, "SIL"]]
        frame = pause_frames
        for word in sentence.split():
            pattern = word_units(word, n_units)
            if units[-1] == pattern[0]:  # deduplicated units never repeat
                pattern = [0, *pattern]
            units += pattern
            durations += [frames_per_unit] * len(pattern)
            start = frame / frame_rate
            frame += frames_per_unit * len(pattern)
            intervals.append([start, frame / frame_rate, word])
        units.append(0)
        durations.append(pause_frames)
        intervals.append([frame / frame_rate, (frame + pause_frames) / frame_rate, "SIL"])
        units_rows.append({"id": uid, "units": units, "durations": durations,
                           "n_frames": int(sum(durations)), "frame_rate": frame_rate})
        label_rows.append({"id": uid, "intervals": intervals})
    return units_rows, label_rows


def write_cloze_benchmark(root: str | os.PathLike, items: Sequence[dict],
                          seconds: float = 0.6) -> Path:
    """A story cloze benchmark dir (``manifest.jsonl``, ``items.jsonl``, ``config.json``)
    whose wavs are speech-like noise carrying the items' texts; ``items`` are text items
    ``{"prompt", "endings", "answer"}``."""
    from ..audio.load import save_wav

    root = Path(root)
    paths, texts, audio_items = [], [], []
    for i, item in enumerate(items):
        roles = {"prompt": item["prompt"],
                 **{f"end{j}": e for j, e in enumerate(item["endings"])}}
        ids = {}
        for k, (role, text) in enumerate(roles.items()):
            wav = random_speech_like_wav(seconds, seed=100 * i + k)
            paths.append(save_wav(root / "wavs" / f"{i:05d}_{role}.wav", wav))
            texts.append(text)
            ids[role] = paths[-1].stem
        audio_items.append({"id": f"{i:05d}", "subset": item.get("subset", "all"),
                            "prompt": ids["prompt"], "answer": int(item["answer"]),
                            "candidates": [v for r, v in ids.items() if r != "prompt"]})
    write_test_manifest(root / "manifest.jsonl", paths, text=texts)
    write_jsonl(root / "items.jsonl", audio_items)
    write_json(root / "config.json", {"kind": "cloze"})
    return root


def interleaved_cloze_items(sentences: Sequence[str], seed: int = 0) -> list[dict]:
    """Cloze items from consecutive sentence pairs: prompt = a sentence, right ending = the
    next one, wrong ending = another one."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(len(sentences) - 1):
        wrong = sentences[(k + 2 + int(rng.integers(len(sentences) - 2))) % len(sentences)]
        answer = int(rng.integers(2))
        endings = [wrong, wrong]
        endings[answer] = sentences[k + 1]
        out.append({"prompt": sentences[k], "endings": endings, "answer": answer})
    return out


#: a toy language in which the noun decides the verb: "the big dog barks"
TOY_PAIRS = (("dog", "barks"), ("cat", "meows"), ("bird", "sings"), ("cow", "moos"),
             ("duck", "quacks"), ("lion", "roars"), ("horse", "neighs"), ("frog", "croaks"))


def toy_language(seed: int = 0) -> list[str]:
    """The 144 sentences ``det adj noun verb`` of :data:`TOY_PAIRS`, shuffled."""
    sentences = [f"{d} {a} {n} {v}" for d in ("the", "a", "one")
                 for a in ("big", "small", "red", "old", "happy", "sad") for n, v in TOY_PAIRS]
    np.random.default_rng(seed).shuffle(sentences)
    return sentences


def toy_units(text: str, n_units: int) -> list[int]:
    """The units :func:`toy_aligned_rows` speaks ``text`` with (leading silence, words)."""
    units = [0]
    for word in text.split():
        pattern = word_units(word, n_units)
        units += [0, *pattern] if units[-1] == pattern[0] else pattern
    return units


def toy_cloze_items(sentences: Sequence[str], n_units: int, seed: int = 0) -> list[dict]:
    """Cloze items of :func:`spokenlm.eval.cross_modal.cross_modal_cloze` over toy speech:
    prompt ``det adj noun``, endings its verb and another noun's verb."""
    rng = np.random.default_rng(seed)
    verbs = [v for _, v in TOY_PAIRS]
    items = []
    for s in sentences:
        *head, verb = s.split()
        wrong = str(rng.choice([v for v in verbs if v != verb]))
        answer = int(rng.integers(2))
        endings = [wrong, wrong]
        endings[answer] = verb
        prompt = " ".join(head)
        items.append({"id": s, "subset": "all", "answer": answer,
                      "prompt": (prompt, toy_units(prompt, n_units)),
                      "endings": [(e, toy_units(e, n_units)) for e in endings]})
    return items
