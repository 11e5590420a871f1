"""CTC forced alignment (Viterbi, in torch) and ``spokenlm align``: frame-level phone labels.

The trellis runs over the target sequence with blanks interleaved (``2L + 1`` states:
blank, y1, blank, y2, ..., blank); each step is vectorised over states and the loop is
over time only. Allowed moves: stay, advance one state, or skip a blank between two
different tokens (CTC's topology). A token's *span* is the frames where the best path sits
in its state; its *segment* runs from its first frame to the next token's first frame
(blanks after a token belong to it), so segments tile the speech; frames before the first
token and after the last token's span are ``sil``.
"""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass
class AlignOptions:
    model: Path = arg(positional=True, help="CTC phoneme model dir (`asr train --unit "
                      "phonemes`)")
    manifest: Path = arg(positional=True, help="manifest with a phonemes field")
    output: Path = arg(Path("alignments.jsonl"), help="frame labels JSONL to write")
    max_utterances: int | None = arg(None, help="align the first N utterances only")
    device: str = arg("cpu", help="cpu, cuda, ...")


@command("align", AlignOptions)
def align_manifest(opts: AlignOptions) -> Path:
    """Forced-align each utterance's phonemes: frame labels at 50 Hz and intervals."""
    model = CTCModel.from_pretrained(opts.model, device=opts.device)
    if model.vocab.unit != "phonemes":
        raise InputError(f"{opts.model}: a {model.vocab.unit} model; alignment needs a "
                         f"phoneme model (`spokenlm asr train --unit phonemes`)")
    rows = read_manifest(opts.manifest)[: opts.max_utterances]
    out, skipped = [], 0
    for row in progress(rows, desc="align", unit="utt"):
        tokens = [t for t in row_tokens(row, "phonemes", opts.manifest) if t in model.vocab.index]
        try:
            lp = model.log_probs(load_row(row))
            ali = forced_align(lp, model.vocab.encode(tokens))
        except (AudioError, InputError) as e:
            log(f"skipping {row['id']}: {e}")
            skipped += 1
            continue
        labels = frame_labels(tokens, ali.spans, lp.shape[0])
        out.append({"id": row["id"], "phones": labels,
                    "intervals": intervals(tokens, ali.spans, lp.shape[0]), "score": ali.score})
    write_jsonl(opts.output, out)
    log(f"{len(out)} utterances aligned -> {opts.output} ({skipped} skipped)")
    return opts.output
