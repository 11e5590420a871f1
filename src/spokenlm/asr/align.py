"""CTC forced alignment (Viterbi, in torch) and ``spokenlm asr align``: phone intervals of a
manifest by a spokenlm CTC phoneme model (also frame-level labels) or by pocketsphinx.

The trellis runs over the target sequence with blanks interleaved (``2L + 1`` states:
blank, y1, blank, y2, ..., blank); each step is vectorised over states and the loop is
over time only. Allowed moves: stay, advance one state, or skip a blank between two
different tokens (CTC's topology). A token's *span* is the frames where the best path sits
in its state; its *segment* runs from its first frame to the next token's first frame
(blanks after a token belong to it), so segments tile the speech; frames before the first
token and after the last token's span are ``sil``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio.constants import FRAME_RATE
from ..audio.load import AudioError, load_row
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import write_jsonl
from ..common.options import arg, command
from ..common.progress import log, progress
from .ctc_model import CTCModel
from .text import row_tokens

SILENCE = "sil"


@dataclass
class Alignment:
    """``spans`` (L, 2) int64 [start, end) frames per token; ``states`` (T,) best-path
    state per frame (odd = token (s - 1) // 2, even = blank); ``score`` its log-prob."""

    spans: torch.Tensor
    states: torch.Tensor
    score: float


def forced_align(log_probs: torch.Tensor, targets: Sequence[int], blank: int = 0) -> Alignment:
    """Best CTC path of ``targets`` (L,) through ``log_probs`` (T, V).

    Raises:
        InputError: the utterance has too few frames for the targets (T < L + repeats).
    """
    lp = log_probs.float().cpu()
    T, L = lp.shape[0], len(targets)
    if L == 0:
        return Alignment(torch.zeros(0, 2, dtype=torch.long),
                         torch.zeros(T, dtype=torch.long), float(lp[:, blank].sum()))
    tgt = torch.as_tensor(targets, dtype=torch.long)
    repeats = int((tgt[1:] == tgt[:-1]).sum())
    if T < L + repeats:
        raise InputError(f"forced alignment: {T} frames cannot hold {L} tokens "
                         f"({repeats} repeats need a blank between); the audio is too short "
                         f"for its transcript")
    S = 2 * L + 1
    ext = torch.full((S,), blank, dtype=torch.long)
    ext[1::2] = tgt
    can_skip = torch.zeros(S, dtype=torch.bool)  # s-2 -> s allowed
    can_skip[3::2] = tgt[1:] != tgt[:-1]
    neg = torch.tensor(float("-inf"))
    emit = lp[:, ext]  # (T, S)
    alpha = torch.full((S,), float("-inf"))
    alpha[:2] = emit[0, :2]
    back = torch.zeros(T, S, dtype=torch.long)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, T):
        stay = alpha
        one = torch.cat([neg[None], alpha[:-1]])
        two = torch.where(can_skip, torch.cat([neg.expand(2), alpha[:-2]]), neg)
        cand = torch.stack([stay, one, two])  # (3, S)
        best, back[t] = cand.max(dim=0)
        alpha = best + emit[t]
    end = S - 1 if alpha[S - 1] >= alpha[S - 2] else S - 2
    score = float(alpha[end])
    if score == float("-inf"):
        raise InputError("forced alignment: no path has finite probability; the model "
                         "gives -inf log-probs to the transcript's tokens")
    states = torch.empty(T, dtype=torch.long)
    s = end
    for t in range(T - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    spans = torch.zeros(L, 2, dtype=torch.long)
    tok = states[states % 2 == 1] // 2
    frames = torch.nonzero(states % 2 == 1).squeeze(1)
    spans[:, 0] = torch.full((L,), T).scatter_reduce(0, tok, frames, "amin")
    spans[:, 1] = torch.zeros(L, dtype=torch.long).scatter_reduce(0, tok, frames + 1, "amax")
    return Alignment(spans, states, score)


def segments(spans: torch.Tensor, n_frames: int) -> list[tuple[int, int]]:
    """Token segments [start, end): each token runs to the next token's start; the last
    ends where its span ends."""
    starts = spans[:, 0].tolist()
    ends = starts[1:] + [int(spans[-1, 1])] if len(starts) else []
    return list(zip(starts, ends))


def frame_labels(tokens: Sequence[str], spans: torch.Tensor, n_frames: int) -> list[str]:
    """One label per frame (F,): the token whose segment covers it, else ``sil``."""
    labels = [SILENCE] * n_frames
    for tok, (s, e) in zip(tokens, segments(spans, n_frames)):
        labels[s:e] = [tok] * (e - s)
    return labels


def intervals(tokens: Sequence[str], spans: torch.Tensor, n_frames: int,
              frame_rate: float = FRAME_RATE) -> list[list]:
    """Token segments as ``[start_s, end_s, token]`` with ``sil`` before the first and after
    the last (repeated tokens stay separate intervals)."""
    segs = [(s, e, t) for t, (s, e) in zip(tokens, segments(spans, n_frames))]
    if not segs:
        segs = [(0, n_frames, SILENCE)] if n_frames else []
    else:
        if segs[0][0] > 0:
            segs.insert(0, (0, segs[0][0], SILENCE))
        if segs[-1][1] < n_frames:
            segs.append((segs[-1][1], n_frames, SILENCE))
    return [[round(s / frame_rate, 4), round(e / frame_rate, 4), t] for s, e, t in segs]


#: ``--aligner`` prefix of a spokenlm CTC phoneme model (the ASR spec of the same model)
CTC_PREFIX = "spokenlm-ctc:"


@dataclass
class AlignOptions:
    manifest: Path = arg(positional=True, help="audio manifest: rows with `phonemes` "
                         "(spokenlm-ctc) or `text` (pocketsphinx)")
    aligner: str = arg("pocketsphinx", help="pocketsphinx: ARPAbet phones of each row's "
                       "`text`; spokenlm-ctc:DIR: a spokenlm CTC phoneme model (`spokenlm asr "
                       "train --unit phonemes`) aligning each row's `phonemes`, also giving 50 "
                       "Hz frame labels")
    output: Path = arg(Path("alignments.jsonl"), help="alignments JSONL to write; failed "
                       "utterances go to <name>.failed.jsonl beside it")
    max_utterances: int | None = arg(None, help="align the first N utterances only")
    device: str = arg("cpu", help="cpu, cuda, ... (spokenlm-ctc)")


def ctc_model_dir(aligner: str) -> Path | None:
    """The model dir of a ``spokenlm-ctc:DIR`` (or bare ``DIR``) aligner; None for
    pocketsphinx.

    Raises:
        InputError: any other aligner.
    """
    if aligner == "pocketsphinx":
        return None
    if aligner.startswith(CTC_PREFIX):
        return Path(aligner[len(CTC_PREFIX):])
    if Path(aligner).is_dir():
        return Path(aligner)
    raise InputError(f"--aligner {aligner!r}: choose pocketsphinx or {CTC_PREFIX}DIR, a "
                     f"spokenlm CTC phoneme model (`spokenlm asr train --unit phonemes`)")


@command("asr align", AlignOptions)
def align_manifest(opts: AlignOptions) -> Path:
    """Forced phone alignment of a manifest's transcripts: phone intervals per utterance.

    Rows are ``{"id", "intervals": [[start_s, end_s, phone], ...]}`` (what PNMI, ABX items
    and SpeechLM-P read); the CTC aligner adds ``phones`` (one label per 50 Hz frame, ``sil``
    outside the speech) and ``score`` (the best path's log-probability).
    """
    model_dir = ctc_model_dir(opts.aligner)
    field = "text" if model_dir is None else "phonemes"
    rows = [r for r in read_manifest(opts.manifest) if r.get(field)]
    if not rows:
        fix = ("make the corpus with `spokenlm data synth`, or align its `text` with "
               "--aligner pocketsphinx" if field == "phonemes" else "forced alignment needs "
               "transcripts")
        raise InputError(f"{opts.manifest}: no row has `{field}` ({fix})")
    rows = rows[: opts.max_utterances]
    align_row = _pocketsphinx_rows() if model_dir is None else _ctc_rows(model_dir, opts)
    out, failed = [], []
    for row in progress(rows, desc="align", unit="utt"):
        try:
            out.append({"id": row["id"], **align_row(row)})
        except (AudioError, InputError) as e:
            failed.append({"id": row["id"], "reason": str(e)})
    write_jsonl(opts.output, out)
    if failed:
        write_jsonl(Path(opts.output).with_suffix(".failed.jsonl"), failed)
    log(f"{len(out)} utterances aligned -> {opts.output} ({len(failed)} failed)")
    return opts.output


def _ctc_rows(model_dir: Path, opts: AlignOptions) -> Callable[[dict], dict]:
    model = CTCModel.from_pretrained(model_dir, device=opts.device)
    if model.vocab.unit != "phonemes":
        raise InputError(f"{model_dir}: a {model.vocab.unit} model; alignment needs a "
                         f"phoneme model (`spokenlm asr train --unit phonemes`)")

    def align_row(row: dict) -> dict:
        tokens = [t for t in row_tokens(row, "phonemes", opts.manifest) if t in model.vocab.index]
        lp = model.log_probs(load_row(row))
        ali = forced_align(lp, model.vocab.encode(tokens))
        return {"phones": frame_labels(tokens, ali.spans, lp.shape[0]),
                "intervals": intervals(tokens, ali.spans, lp.shape[0]), "score": ali.score}

    return align_row


def _pocketsphinx_rows() -> Callable[[dict], dict]:
    from .sphinx import PocketSphinxAligner

    aligner = PocketSphinxAligner()

    def align_row(row: dict) -> dict:
        ivs = aligner.align(load_row(row), row["text"])
        return {"intervals": [[round(a, 3), round(b, 3), p] for a, b, p in ivs]}

    return align_row
