"""Phone-normalised mutual information (PNMI), phone purity and cluster purity (HuBERT).

With the joint distribution p(y, z) of frame phone labels y and frame units z:

- PNMI = I(y; z) / H(y): the fraction of the phone uncertainty the units remove
  (1 = units determine the phone; 0 = independent);
- phone purity = E_z[max_y p(y | z)]: how pure each unit is in phones;
- cluster purity = E_y[max_z p(z | y)]: how concentrated each phone is on one unit.

Labels: any alignment :func:`spokenlm.data.alignments.read_alignments` reads: a TextGrid,
a folder of TextGrids (Montreal Forced Aligner output; ids = file stems), a CTM file, or
spokenlm's labels JSONL (one row per utterance; times in seconds)::

    {"id": "spk00_00001", "intervals": [[0.00, 0.11, "SIL"], [0.11, 0.18, "DH"], ...]}

which ``spokenlm asr align`` writes (pocketsphinx or a CTC phoneme model). Labels
are normalised on reading (silences, MFA's ``sp``/``spn`` and empty intervals -> ``SIL``;
ARPAbet stress digits stripped), so ``--ignore SIL`` leaves out every silence.

Frame i gets the phone whose interval holds its centre, (hop i + window / 2) / 16000 s:
(320 i + 200) / 16000 s for 50 Hz units; the units' ``frame_rate`` (recorded by ``tokenize``)
sets the hop. Frames outside every interval are left out, as are phones in ``ignore``
(default: none).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.framing import DEFAULT_FRAMING, Framing, UnitsFraming
from ..common.errors import InputError
from ..common.files import iter_jsonl, write_json
from ..common.options import arg, command
from ..common.paths import stored_fields
from ..common.progress import log
from ..data.alignments import (ALIGNMENTS_HELP, SILENCE, SILENCE_HELP, STRESS_HELP, TIER_HELP,
                               normalize_label, read_alignments)
from .skips import Skips, fmt, set_or_reason


def frame_labels(intervals: Sequence[Sequence], n_frames: int,
                 framing: Framing = DEFAULT_FRAMING) -> list[str | None]:
    """Phone of each of ``n_frames`` 50 Hz frames from ``[[start_s, end_s, phone], ...]``."""
    centres = framing.centres(n_frames)
    out: list[str | None] = [None] * n_frames
    if not intervals:
        return out
    starts = np.array([float(iv[0]) for iv in intervals])
    ends = np.array([float(iv[1]) for iv in intervals])
    order = np.argsort(starts)
    pos = np.searchsorted(starts[order], centres, side="right") - 1
    for i, p in enumerate(pos):
        if p >= 0 and centres[i] < ends[order[p]]:
            out[i] = str(intervals[order[p]][2])
    return out


def pnmi_scores(units: Iterable[int], phones: Iterable[str | int]) -> dict:
    """PNMI, phone purity and cluster purity of aligned frame sequences (same length);
    PNMI is None (with ``pnmi_reason``) when the labels hold a single phone."""
    units = np.asarray(list(units))
    phones = list(phones)
    if len(units) != len(phones):
        raise ValueError(f"{len(units)} units but {len(phones)} phone labels")
    if len(units) == 0:
        raise InputError("PNMI: no labelled frame; check the labels file and the units ids")
    _, y = np.unique(np.asarray(phones, dtype=object).astype(str), return_inverse=True)
    _, z = np.unique(units, return_inverse=True)
    joint = np.zeros((y.max() + 1, z.max() + 1))
    np.add.at(joint, (y, z), 1.0)
    p = joint / joint.sum()  # (Y, Z)
    py, pz = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / (py[:, None] * pz[None, :])[nz])).sum())
    hy = float(-(py[py > 0] * np.log(py[py > 0])).sum())
    out: dict = {}
    set_or_reason(out, "pnmi", mi / hy if hy > 0 else None,
                  "the labels hold a single phone, so the phone entropy is 0")
    return {**out,
            "phone_purity": float(p.max(0).sum()),  # sum_z p(z) max_y p(y|z)
            "cluster_purity": float(p.max(1).sum()),  # sum_y p(y) max_z p(z|y)
            "mutual_information_nats": mi, "phone_entropy_nats": hy,
            "n_frames": int(len(units)), "n_phones": int(joint.shape[0]),
            "n_units_used": int(joint.shape[1])}


def frame_units(row: dict) -> np.ndarray:
    """Frame-level units of a units-JSONL row (run lengths expanded when deduplicated)."""
    units = np.asarray(row["units"], dtype=np.int64)
    if row.get("durations") is not None:
        units = np.repeat(units, np.asarray(row["durations"], dtype=np.int64))
    return units


#: skip reason of a units row whose id the labels file lacks
NO_LABELS = "id not in the labels file"


@dataclass
class PNMIOptions:
    units: Path = arg(positional=True, help="units JSONL (spokenlm tokenize run output)")
    labels: Path = arg(help=ALIGNMENTS_HELP, scanned=True)
    ignore: list[str] = arg([], help="phones to leave out (e.g. SIL)")
    tier: str = arg("phones", help=TIER_HELP)
    silence_label: str | None = arg(SILENCE, help=SILENCE_HELP)
    strip_stress: bool = arg(True, help=STRESS_HELP)
    output: Path = arg(Path("pnmi.json"), help="metrics JSON to write")


@command("eval pnmi", PNMIOptions)
def evaluate_pnmi(opts: PNMIOptions) -> dict:
    """PNMI, phone purity and cluster purity of frame units against phone labels."""
    labels = read_alignments(opts.labels, tier=opts.tier, silence_label=opts.silence_label,
                             strip_stress=opts.strip_stress)
    ignore = set(opts.ignore) | {normalize_label(p, opts.silence_label, opts.strip_stress)
                                 for p in opts.ignore}
    all_u: list[np.ndarray] = []
    all_p: list[str] = []
    skips = Skips("PNMI", "utterances")
    n_utts = 0
    rates = UnitsFraming(opts.units)
    for row in iter_jsonl(opts.units):
        rates.add(row)
        if row.get("id") not in labels:
            skips.add(NO_LABELS, row.get("id"))
            continue
        u = frame_units(row)
        lab = frame_labels(labels[row["id"]], len(u), rates.framing)
        keep = np.array([x is not None and x not in ignore for x in lab], dtype=bool)
        if not keep.any():
            skips.add("no labelled frame (outside every interval, or an ignored phone)",
                      row["id"])
            continue
        all_u.append(u[keep])
        all_p.extend(x for x in lab if x is not None and x not in ignore)
        n_utts += 1
    skips.require(n_utts, opts.units)
    scores = pnmi_scores(np.concatenate(all_u), all_p)
    metrics = {"metric": "pnmi", **scores, "n_utterances": n_utts,
               "n_utterances_without_labels": skips.counts[NO_LABELS],
               "labels_format": labels.format,
               **skips.report(), "inputs": stored_fields(opts, opts.output)}
    write_json(opts.output, metrics)
    log(f"PNMI {fmt(scores['pnmi'])}, phone purity {scores['phone_purity']:.3f}, cluster "
        f"purity {scores['cluster_purity']:.3f} over {scores['n_frames']} frames")
    return metrics
