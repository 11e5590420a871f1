"""The command table: every ``spokenlm`` command as data (module, function, summary).

``spokenlm --help`` and ``spokenlm GROUP --help`` are built from this table alone, so they
import neither torch nor transformers; only the command that runs (or whose ``--help`` is
asked for) imports its module, whose ``@command("group name", Options)`` registration
(:mod:`spokenlm.common.options`) supplies the options.

Names follow the package folders: a command's first word is the sub-package its module
lives in (``tokenize train`` is :mod:`spokenlm.tokenize.train`, ``asr align`` is
:mod:`spokenlm.asr.align`); the end-to-end verbs of :mod:`spokenlm.pipeline` (``demo``,
``generate``, ``resynth``, ``report``) are one word. The summary is the first line of the
function's docstring. To add a command, register it with ``@command`` and add its line to
:data:`TABLE` (``tests/cli/test_commands.py`` fails with the exact line when one is missing).

Old names stay usable as hidden aliases (:data:`ALIASES`): they run the new command after a
one-line note on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple


class Entry(NamedTuple):
    """Where a command lives: ``module.function`` (registered with ``@command``)."""

    module: str
    function: str
    summary: str


#: command name -> where it lives, in pipeline order (the order ``spokenlm --help`` lists).
TABLE: dict[str, Entry] = {
    "audio manifest": Entry("spokenlm.audio.manifest", "make_manifest",
                            "Write a JSONL manifest of every valid audio file under a folder, "
                            "and a skip report."),
    "data synth": Entry("spokenlm.data.synth", "synth_corpus",
                        "Make a multi-speaker English corpus with espeak-ng: wavs, manifests per "
                        "split."),
    "data librispeech": Entry("spokenlm.data.corpora.librispeech", "librispeech",
                              "Write a manifest of a LibriSpeech root and a skip report of the "
                              "files left out."),
    "data librilight": Entry("spokenlm.data.corpora.librilight", "librilight",
                             "Write a manifest of Libri-Light segments and a skip report of the "
                             "files left out."),
    "data segment": Entry("spokenlm.data.corpora.vad", "segment_manifest",
                          "Cut each recording of a manifest into speech segments by Silero VAD."),
    "data from-lhotse": Entry("spokenlm.data.corpora.lhotse", "from_lhotse",
                              "Import lhotse recordings (+ supervisions) or cuts into a spokenlm "
                              "manifest."),
    "data to-lhotse": Entry("spokenlm.data.corpora.lhotse", "to_lhotse",
                            "Export a spokenlm manifest as lhotse recordings, supervisions and "
                            "cuts."),
    "data from-kaldi": Entry("spokenlm.data.corpora.kaldi", "from_kaldi",
                             "Import a Kaldi data directory (wav.scp, segments, text, utt2spk) as "
                             "a manifest."),
    "data from-hf": Entry("spokenlm.data.corpora.hf_datasets", "from_hf",
                          "Import a Hugging Face dataset saved to disk: one manifest per split, "
                          "audio extracted."),
    "data word-alignments": Entry("spokenlm.data.tts_words", "word_alignments",
                                  "Word intervals of an espeak-ng corpus from espeak-ng's own "
                                  "word events."),
    "data phoneme-units": Entry("spokenlm.data.phoneme_units", "phoneme_units",
                                "SpeechLM-P phoneme units of aligned speech and of text."),
    "data bench build": Entry("spokenlm.data.benchmark_builders", "build_benchmark",
                              "Speak text minimal pairs, cloze items, word or preference pairs "
                              "into a benchmark dir."),
    "data bench spot-the-word": Entry("spokenlm.data.spoken_benchmark", "build_spot_the_word",
                                      "Speak real words of the corpus vocabulary and matched "
                                      "pseudo-words with held-out voices."),
    "tokenize train": Entry("spokenlm.tokenize.train", "train_tokenizer",
                            "Train a speech tokenizer (encoder features + k-means) on a "
                            "manifest's audio."),
    "tokenize run": Entry("spokenlm.tokenize.run", "tokenize_manifest",
                          "Turn every file of a manifest into units (JSONL, plus packed files "
                          "for LM training)."),
    "ssl train": Entry("spokenlm.ssl.train", "train_ssl",
                       "HuBERT-style pretraining (one iteration); returns the final encoder dir."),
    "lm pretrain-text": Entry("spokenlm.lm.text_lm", "pretrain_text_lm",
                              "Train a small LLaMA text LM to warm-start a unit LM from (TWIST)."),
    "lm train": Entry("spokenlm.lm.train", "train_lm",
                      "Train a unit LM on packed units; returns the final unit LM dir "
                      "(<output>/final)."),
    "lm interleave-data": Entry("spokenlm.lm.interleave_data", "interleave_data",
                                "Interleave units and word text into packed sequences for `lm "
                                "train --interleave`."),
    "lm dpo": Entry("spokenlm.lm.dpo", "train_dpo",
                    "Preference-tune a unit LM with DPO; returns the final unit LM dir "
                    "(<output>/final)."),
    "vocoder train": Entry("spokenlm.vocoder.train", "train_vocoder",
                           "Train a vocoder (units -> 16 kHz audio) and return its directory "
                           "``<output>/final``."),
    "asr train": Entry("spokenlm.asr.ctc_train", "train_asr",
                       "Fine-tune an encoder with a CTC head on transcribed audio; returns "
                       "final/."),
    "asr eval": Entry("spokenlm.asr.ctc_train", "eval_asr",
                      "WER/CER (characters) or PER (phonemes) of a CTC model on a manifest."),
    "asr align": Entry("spokenlm.asr.align", "align_manifest",
                       "Forced phone alignment of a manifest's transcripts: phone intervals per "
                       "utterance."),
    "joint t2u train": Entry("spokenlm.joint.t2u_train", "train_t2u",
                             "Train SpeechLM-H's text-to-unit model (phonemes -> durations -> "
                             "hidden units)."),
    "joint speechlm train": Entry("spokenlm.joint.speechlm_train", "train_speechlm",
                                  "SpeechLM pretraining (UMLM + UCTC + random swapping); returns "
                                  "final/."),
    "joint slam train": Entry("spokenlm.joint.slam_train", "train_slam",
                              "SLAM pretraining (w2v-BERT, text MLM, TLM, STM); returns final/."),
    "eval all": Entry("spokenlm.eval.all", "evaluate_all",
                      "Run every available metric on a run directory and print one table."),
    "eval abx": Entry("spokenlm.eval.abx", "evaluate_abx",
                      "Within- and across-speaker ABX error of features and units."),
    "eval abx-items": Entry("spokenlm.eval.abx_items", "abx_items",
                            "ZeroSpeech .item file of phone triphones from alignments, for `eval "
                            "abx --item-file`."),
    "eval pnmi": Entry("spokenlm.eval.pnmi", "evaluate_pnmi",
                       "PNMI, phone purity and cluster purity of frame units against phone "
                       "labels."),
    "eval spot-the-word": Entry("spokenlm.eval.spot_the_word", "spot_the_word",
                                "Spot-the-word accuracy of a unit LM on spoken word/pseudo-word "
                                "pairs."),
    "eval acceptability": Entry("spokenlm.eval.acceptability", "evaluate_acceptability",
                                "sBLIMP-style accuracy: does the LM prefer the grammatical "
                                "sentence of each pair?"),
    "eval story-cloze": Entry("spokenlm.eval.acceptability", "evaluate_story_cloze",
                              "Story cloze accuracy: does the LM prefer the real ending given the "
                              "spoken story?"),
    "eval cross-modal": Entry("spokenlm.eval.cross_modal", "evaluate_cross_modal",
                              "Cross-modal story cloze, continuation and text perplexity of an "
                              "interleaved LM."),
    "eval official": Entry("spokenlm.eval.official", "evaluate_official",
                           "Score a released benchmark folder (sLM21, ProsAudit, sSC/tSC, SALMon) "
                           "the reference way."),
    "eval salmon": Entry("spokenlm.eval.salmon", "evaluate_salmon",
                         "SALMon accuracy per part, scored as SALMon's salmon.py and slamkit "
                         "score it."),
    "eval zerospeech-submission": Entry("spokenlm.eval.zerospeech_submission",
                                        "zerospeech_submission",
                                        "Write a ZeroSpeech 2021 submission folder for the "
                                        "official zerospeech2021 tools."),
    "eval generation": Entry("spokenlm.eval.generation", "evaluate_generation",
                             "auto-BLEU, self-BLEU, VERT, diversity, unit PPL; with ASR + text "
                             "LM: PPX, GenPPL."),
    "eval resynthesis": Entry("spokenlm.eval.resynthesis", "evaluate_resynthesis",
                              "WER / CER (and PER) of resynthesised audio transcribed by an ASR."),
    "interop hubert-import": Entry("spokenlm.interop.fairseq_hubert", "convert_hubert",
                                   "Convert a fairseq HuBERT/mHuBERT .pt into a Hugging Face "
                                   "HubertModel directory."),
    "interop kmeans-import": Entry("spokenlm.interop.sklearn_kmeans", "import_kmeans",
                                   "Import a scikit-learn k-means (joblib) as a spokenlm "
                                   "tokenizer directory."),
    "interop kmeans-export": Entry("spokenlm.interop.sklearn_kmeans", "export_kmeans",
                                   "Export a tokenizer's centroids as a joblib-pickled "
                                   "scikit-learn MiniBatchKMeans."),
    "interop vocoder-import": Entry("spokenlm.interop.speech_resynthesis", "import_vocoder",
                                    "Import a speech-resynthesis / fairseq unit HiFi-GAN as a "
                                    "spokenlm vocoder directory."),
    "interop vocoder-export": Entry("spokenlm.interop.speech_resynthesis", "export_vocoder",
                                    "Export a spokenlm HiFi-GAN as a speech-resynthesis generator "
                                    "(g_00000000 + config)."),
    "demo": Entry("spokenlm.pipeline.demo", "demo",
                  "Run the whole pipeline on a synthetic corpus and write metrics.json + "
                  "report.html."),
    "resynth": Entry("spokenlm.pipeline.resynth", "resynth",
                     "Resynthesise audio through the units: audio -> tokenizer -> vocoder -> wav "
                     "files."),
    "generate": Entry("spokenlm.pipeline.generate", "generate",
                      "Continue spoken prompts with the unit LM and speak the continuations."),
    "report": Entry("spokenlm.pipeline.report", "report",
                    "Write one HTML page with the metrics, evaluations, audio and training of "
                    "runs."),
}

#: group -> one line for ``spokenlm --help`` (a group is every proper prefix of a name)
GROUPS: dict[str, str] = {
    "audio": "audio files: manifests",
    "data": "corpora in and out, synthetic speech, phoneme units, spoken benchmarks",
    "data bench": "build spoken benchmarks: minimal pairs, cloze, preference, spot-the-word",
    "tokenize": "speech tokenizers: train one (features + k-means), audio -> units",
    "ssl": "HuBERT-style encoder pretraining",
    "lm": "unit language models: train, preference-tune, text LM for warm starts",
    "vocoder": "units -> audio",
    "asr": "speech recognition: CTC fine-tuning and evaluation, forced alignment",
    "joint": "joint speech-text models: SpeechLM, SLAM, text-to-unit",
    "joint t2u": "SpeechLM-H's text-to-unit model",
    "joint speechlm": "SpeechLM-P/H joint pretraining",
    "joint slam": "SLAM joint pretraining",
    "eval": "metrics: ABX, PNMI, likelihood benchmarks, generation, resynthesis",
    "interop": "read and write the reference recipes' files (fairseq, scikit-learn, "
               "speech-resynthesis)",
}


def _ctc_model_to_aligner(args: list[str]) -> list[str]:
    """``align MODEL MANIFEST ...`` -> ``asr align --aligner spokenlm-ctc:MODEL MANIFEST ...``
    (every option of the old command took one value)."""
    out, i, done = [], 0, False
    while i < len(args):
        a = args[i]
        if not done and not a.startswith("-"):
            out += ["--aligner", f"spokenlm-ctc:{a}"]
            done = True
        elif a.startswith("--") and "=" not in a and a != "--help" and i + 1 < len(args):
            out += [a, args[i + 1]]
            i += 1
        else:
            out.append(a)
        i += 1
    return out


def _pocketsphinx_aligner(args: list[str]) -> list[str]:
    """``eval align MANIFEST --limit N`` -> ``asr align MANIFEST --max-utterances N
    --aligner pocketsphinx``."""
    renamed = ["--max-utterances" + a[len("--limit"):] if a.split("=")[0] == "--limit" else a
               for a in args]
    return [*renamed, "--aligner", "pocketsphinx"]


class Alias(NamedTuple):
    """An old command name: the command it now is, and how its arguments change (if they do)."""

    new: str
    rewrite: Callable[[list[str]], list[str]] | None = None


#: old name -> new command; hidden from the help, each use prints a one-line note.
ALIASES: dict[str, Alias] = {
    "data manifest": Alias("audio manifest"),
    "bench build": Alias("data bench build"),
    "bench spot-the-word": Alias("data bench spot-the-word"),
    "tokenizer train": Alias("tokenize train"),
    "tokenize": Alias("tokenize run"),
    "t2u train": Alias("joint t2u train"),
    "align": Alias("asr align", _ctc_model_to_aligner),
    "eval align": Alias("asr align", _pocketsphinx_aligner),
    "convert hubert": Alias("interop hubert-import"),
    "convert kmeans-import": Alias("interop kmeans-import"),
    "convert kmeans-export": Alias("interop kmeans-export"),
    "convert vocoder-import": Alias("interop vocoder-import"),
    "convert vocoder-export": Alias("interop vocoder-export"),
}

GLOBAL_FLAGS = ("--debug",)
HELP_FLAGS = ("-h", "--help")


def children(prefix: str) -> list[str]:
    """The next words after group ``prefix`` ("" for the top level), in table order."""
    depth = len(prefix.split())
    out: list[str] = []
    for name in TABLE:
        words = name.split()
        if len(words) > depth and " ".join(words[:depth]) == prefix and words[depth] not in out:
            out.append(words[depth])
    return out


class Resolved(NamedTuple):
    """What an argv names: a command (or None: help, a group, or an unknown word), the argv
    to parse (old names rewritten to the new ones) and the note for an old name."""

    command: str | None
    argv: list[str]
    note: str | None = None


def resolve(argv: Sequence[str]) -> Resolved:
    """The command ``argv`` runs, reading only this table (no command module is imported)."""
    argv = list(argv)
    i = 0
    while i < len(argv) and argv[i] in GLOBAL_FLAGS:
        i += 1
    path: list[str] = []
    while i + len(path) < len(argv) and argv[i + len(path)] in children(" ".join(path)):
        path.append(argv[i + len(path)])
        if " ".join(path) in TABLE:
            return Resolved(" ".join(path), argv)
    nxt = argv[i + len(path)] if i + len(path) < len(argv) else None
    if path and (nxt is None or nxt in HELP_FLAGS):
        return Resolved(None, argv)  # a group's own help
    for old in sorted(ALIASES, key=lambda a: -len(a.split())):
        words = old.split()
        if argv[i:i + len(words)] == words:
            alias = ALIASES[old]
            rest = argv[i + len(words):]
            rest = alias.rewrite(rest) if alias.rewrite else rest
            note = (f"spokenlm: note: `spokenlm {old}` is now `spokenlm {alias.new}`; the old "
                    f"name still works for now")
            return Resolved(alias.new, [*argv[:i], *alias.new.split(), *rest], note)
    return Resolved(None, argv)
