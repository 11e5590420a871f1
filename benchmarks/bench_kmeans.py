"""k-means fit speed: spokenlm (faiss) against scikit-learn ``MiniBatchKMeans`` with the
settings of fairseq's HuBERT recipe, same features, same process.

- spokenlm: ``spokenlm.tokenize.kmeans.KMeans.fit(x, k)`` with its defaults (what
  ``spokenlm tokenize train`` calls): greedy k-means++ seeding on a random 256 points per
  centroid, then 20 faiss Lloyd iterations on them.
- baseline: fairseq ``examples/hubert/simple_kmeans/learn_kmeans.py``: its ``get_km_model``
  builds ``MiniBatchKMeans(n_clusters=k, init="k-means++", max_iter=100, batch_size=10000,
  verbose=1 (here 0), compute_labels=False, tol=0.0, max_no_improvement=100, init_size=None,
  n_init=20, reassignment_ratio=0.0)`` (the script's argparse defaults) and calls
  ``fit(feat)`` on all features (``--percent -1``). GSLM / textlesslib k-means files are
  made the same way.

Features: float32 (N, 768) with the structure of SSL features (a low-rank Gaussian mixture
with unequal cluster sizes and scales), plus a held-out set of N / 10 drawn from the same
mixture. Both models are scored by the same function: inertia (sum of squared distances to
the nearest centroid) on the held-out features.

Bar (issue 6): >= 10x faster, held-out inertia equal or lower (here: <= baseline * 1.001).

    python benchmarks/bench_kmeans.py [--full] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, parser, setup, timed  # noqa: E402

INERTIA_TOL = 1e-3


def make_features(n: int, d: int, seed: int, n_modes: int = 2000,
                  rank: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(train (n, d), held-out (n // 10, d)) float32 from one low-rank Gaussian mixture."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, d)).astype(np.float32) / np.sqrt(rank)
    means = rng.standard_normal((n_modes, rank)).astype(np.float32) * 3.0
    weights = rng.dirichlet(np.full(n_modes, 0.5))
    scales = rng.uniform(0.5, 1.5, n_modes).astype(np.float32)

    def draw(m: int, r: np.random.Generator) -> np.ndarray:
        out = np.empty((m, d), np.float32)
        for s in range(0, m, 100_000):  # bounded temporaries
            c = r.choice(n_modes, size=min(100_000, m - s), p=weights)
            z = means[c] + scales[c, None] * r.standard_normal((len(c), rank), np.float32)
            out[s:s + len(c)] = z @ basis + 0.3 * r.standard_normal((len(c), d), np.float32)
        return out

    return draw(n, np.random.default_rng(seed + 1)), draw(n // 10, np.random.default_rng(seed + 2))


def fairseq_minibatch_kmeans(k: int, seed: int):
    """``get_km_model`` of fairseq's learn_kmeans.py with its default arguments."""
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, init="k-means++", max_iter=100, batch_size=10000,
                           verbose=0, compute_labels=False, tol=0.0, max_no_improvement=100,
                           init_size=None, n_init=20, reassignment_ratio=0.0,
                           random_state=seed)


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None, help="training frames")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--k", type=int, default=None)
    args = p.parse_args(argv)
    device = setup(args)  # k-means runs on the CPU (faiss-cpu, scikit-learn)
    n = args.n or (1_000_000 if args.full else 30_000)
    k = args.k or (500 if args.full else 100)

    from spokenlm.tokenize.kmeans import KMeans

    log(f"features {n} x {args.dim}, k={k}")
    x, held = make_features(n, args.dim, args.seed)

    log("spokenlm (faiss)")
    ours, t_ours = timed(lambda: KMeans.fit(x, k, seed=args.seed), device)
    log(f"  {t_ours:.2f} s; baseline: sklearn MiniBatchKMeans, fairseq learn_kmeans.py settings")
    km, t_base = timed(lambda: fairseq_minibatch_kmeans(k, args.seed).fit(x), device)
    log(f"  {t_base:.2f} s")

    base = KMeans(km.cluster_centers_.astype(np.float32))
    i_ours, i_base = ours.inertia(held) / len(held), base.inertia(held) / len(held)
    i_ours_train = ours.inertia(x) / len(x)
    i_base_train = base.inertia(x) / len(x)
    ratio = t_base / t_ours
    agree = i_ours <= i_base * (1 + INERTIA_TOL)
    return emit(
        "kmeans",
        spokenlm={"seconds": t_ours, "heldout_inertia_per_frame": i_ours,
                  "train_inertia_per_frame": i_ours_train, "niter": 20,
                  "init": "k-means++"},
        baseline={"recipe": "fairseq learn_kmeans.py MiniBatchKMeans", "seconds": t_base,
                  "heldout_inertia_per_frame": i_base, "train_inertia_per_frame": i_base_train,
                  "n_steps": int(getattr(km, "n_steps_", -1)),
                  "n_iter": int(getattr(km, "n_iter_", -1))},
        ratio=ratio, outputs_agree=bool(agree),
        agreement={"heldout_inertia_ratio_spokenlm_over_baseline": i_ours / i_base},
        bar=">=10x faster, held-out inertia <= baseline (+0.1%)",
        meets_bar=bool(ratio >= 10 and agree), device=device,
        size={"n": n, "dim": args.dim, "k": k, "heldout": len(held), "full": args.full})


if __name__ == "__main__":
    main()
