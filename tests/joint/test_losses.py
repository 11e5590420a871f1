from __future__ import annotations

import math

import pytest
import torch

from spokenlm.joint.blocks import ConformerLayer, bert_corrupt, text_span_mask
from spokenlm.joint.losses import contrastive_loss, ctc_loss, masked_ce, random_swap, \
    stm_negatives
from spokenlm.joint.quantizer import GumbelQuantizer
from spokenlm.ssl.masking import mask_runs


def test_text_span_mask_inside_lengths_and_in_spans() -> None:
    m = text_span_mask([20, 12, 5], mask_prob=0.3, span=3, seed=0, max_len=20)
    assert m.shape == (3, 20)
    assert not m[1, 12:].any() and not m[2, 5:].any()
    assert all(m[b].any() for b in range(3))  # at least one span each
    assert all(r >= 3 for r in mask_runs(m[0]))


def test_bert_corrupt_touches_masked_positions_only() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 30, (4, 200), generator=g)
    mask = torch.rand(4, 200, generator=g) < 0.5
    out = bert_corrupt(ids, mask, mask_id=30, vocab_size=30, generator=g)
    assert torch.equal(out[~mask], ids[~mask])
    share = (out[mask] == 30).float().mean()
    assert 0.7 < share < 0.9


def test_masked_ce_counts_selected_positions_only() -> None:
    logits = torch.zeros(1, 4, 3)
    logits[0, 0, 1] = logits[0, 1, 2] = 10.0
    labels = torch.tensor([[1, 2, 1, 2]])
    loss, acc = masked_ce(logits, labels, torch.tensor([[True, True, False, False]]))
    assert loss < 1e-3 and acc == 1.0
    loss2, acc2 = masked_ce(logits, labels, torch.tensor([[False, False, True, True]]))
    assert loss2 > 1.0 and acc2 == 0.0


def test_random_swap_rate_and_masked_frames_kept() -> None:
    g = torch.Generator().manual_seed(1)
    h, emb = torch.zeros(8, 500, 4), torch.ones(8, 500, 4)
    mask = torch.rand(8, 500, generator=g) < 0.5
    valid = torch.ones_like(mask)
    out, swap = random_swap(h, emb, mask, valid, prob=0.2, generator=g)
    assert not swap[mask].any()
    assert abs(swap[~mask].float().mean().item() - 0.2) < 0.03
    assert torch.equal(out[swap], emb[swap]) and torch.equal(out[~swap], h[~swap])
    _, none = random_swap(h, emb, mask, valid, prob=0.0)
    assert not none.any()


def test_ctc_loss_targets_and_lengths() -> None:
    lp = torch.full((2, 10, 5), -10.0)
    path = [[1, 0, 2, 0, 3, 0, 0, 0, 0, 0], [4, 4, 0, 4, 0, 0, 0, 0, 0, 0]]
    for b, p in enumerate(path):
        lp[b, torch.arange(10), torch.tensor(p)] = 0.0
    lp = lp.log_softmax(-1)
    good = ctc_loss(lp, torch.tensor([10, 6]), [[1, 2, 3], [4, 4]])
    bad = ctc_loss(lp, torch.tensor([10, 6]), [[3, 2, 1], [1, 2]])
    assert torch.isfinite(good) and good < 0.1 < bad


def test_stm_negatives_never_the_true_pair() -> None:
    texts = ["a", "b", "a", "c", "b"]
    for seed in range(20):
        neg = stm_negatives(texts, torch.Generator().manual_seed(seed))
        assert all(j != i and texts[j] != texts[i] for i, j in enumerate(neg))
    assert stm_negatives(["x", "x"]) == [-1, -1]


def test_contrastive_loss_finite_and_lower_for_matching_targets() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 30, 16, generator=g)
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[:, 5:25] = True
    match = contrastive_loss(q + 0.01 * torch.randn(2, 30, 16, generator=g), q, mask, 10,
                             0.1, torch.Generator().manual_seed(1))
    other = contrastive_loss(torch.randn(2, 30, 16, generator=g), q, mask, 10, 0.1,
                             torch.Generator().manual_seed(1))
    assert torch.isfinite(match) and torch.isfinite(other)
    assert match < 0.5 * other
    # identical targets (a collapsed codebook) stay finite: equal distractors are ignored
    same = contrastive_loss(q, torch.ones(2, 30, 16), mask, 10)
    assert torch.isfinite(same)


def test_quantizer_codes_and_diversity() -> None:
    qz = GumbelQuantizer(8, entries=4, groups=2, code_dim=6)
    out = qz(torch.randn(2, 7, 8))
    assert out.vectors.shape == (2, 7, 6) and out.codes.shape == (2, 7)
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < qz.n_codes == 16
    assert 0 <= float(out.diversity.detach()) <= 1
    out.vectors.sum().backward()
    assert qz.logits.weight.grad is not None  # straight-through gradient


def test_quantizer_codes_are_a_function_of_the_features_at_init() -> None:
    """wav2vec 2.0's N(0, 1) logit init: the Gumbel noise hardly changes a frame's code, so
    the contrastive/MLM targets carry information from step 0 (default Linear init gave
    noise codes: per-frame entropy ~ln V and two draws agreeing on ~1/V of frames)."""
    torch.manual_seed(0)
    qz = GumbelQuantizer(64, entries=64).train()
    x = torch.randn(4, 50, 64)
    a, b = qz(x), qz(x)  # two Gumbel draws
    assert float((a.codes == b.codes).float().mean()) > 0.6
    assert a.entropy < 0.5 * math.log(64)
    assert a.perplexity > 8  # and the frames do not share one code


def test_quantizer_temperature_anneals_with_run_length() -> None:
    qz = GumbelQuantizer(8, entries=4)  # tau (2.0, 0.5, 0.999995)
    qz.set_step(1000)  # wav2vec 2.0 schedule: barely moves in a short run
    assert qz.tau == pytest.approx(2.0 * 0.999995 ** 1000)
    qz.set_step(0, total_steps=400)
    assert qz.tau == 2.0
    qz.set_step(140, total_steps=400)  # half-way to the horizon (0.7 * 400): geometric mean
    assert qz.tau == pytest.approx(1.0)
    qz.set_step(280, total_steps=400)
    assert qz.tau == pytest.approx(0.5)
    qz.set_step(400, total_steps=400)
    assert qz.tau == 0.5


def test_conformer_ignores_padding() -> None:
    torch.manual_seed(0)
    layer = ConformerLayer(16, 2, 32, kernel=5).eval()
    x = torch.randn(1, 10, 16)
    padded = torch.cat([x, torch.randn(1, 4, 16)], 1)
    pad = torch.zeros(1, 14, dtype=torch.bool)
    pad[:, 10:] = True
    assert torch.allclose(layer(x), layer(padded, pad)[:, :10], atol=1e-5)


@pytest.mark.parametrize("quantizer_grad", [False, True])
def test_slam_targets_do_not_train_the_conv_encoder_by_default(quantizer_grad: bool) -> None:
    """The quantiser reads the conv features through a stop-gradient (else the encoder
    learns to give every frame one code): a loss on the quantiser alone (its diversity
    term) reaches the conv encoder only with ``quantizer_grad``."""
    from spokenlm.joint.slam import SLAMConfig, SLAMModel

    torch.manual_seed(0)
    model = SLAMModel(SLAMConfig(hidden=16, heads=2, ffn=32, conv_dim=8, speech_layers=1,
                                 shared_layers=1, code_entries=8, code_dim=8,
                                 quantizer_grad=quantizer_grad)).train()
    wav = torch.randn(2, 4000)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[:, 3:8] = True
    out = model.speech_loss(wav, None, mask, torch.Generator().manual_seed(0))
    out["diversity"].backward()
    conv = model.frontend.feature_extractor.conv_layers[0].conv.weight.grad
    assert model.quantizer.logits.weight.grad is not None  # the quantiser itself learns
    assert (conv is not None and bool(conv.abs().sum() > 0)) is quantizer_grad


def test_frontend_grad_mult_scales_only_the_gradient() -> None:
    from spokenlm.joint.blocks import SpeechFrontend, frontend_config

    cfg = frontend_config(16, 8, 2, 32, norm="layer")
    wav = torch.randn(1, 4000)
    grads, outs = [], []
    for mult in (1.0, 0.1):
        torch.manual_seed(0)
        fe = SpeechFrontend(cfg, grad_mult=mult).train()
        _, feats, _ = fe(wav)
        feats.sum().backward()
        outs.append(feats.detach())
        grads.append(fe.feature_extractor.conv_layers[0].conv.weight.grad.clone())
    assert torch.allclose(outs[0], outs[1])
    assert torch.allclose(grads[1], 0.1 * grads[0], rtol=1e-4, atol=1e-7)


def test_slam_frozen_code_assignment_trains_only_the_codebook() -> None:
    from spokenlm.joint.slam import SLAMConfig, SLAMModel

    torch.manual_seed(0)
    model = SLAMModel(SLAMConfig(hidden=16, heads=2, ffn=32, conv_dim=8, speech_layers=1,
                                 shared_layers=1, code_entries=8, code_dim=8,
                                 frozen_code_assignment=True)).train()
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[:, 3:8] = True
    out = model.speech_loss(torch.randn(2, 4000), None, mask, torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert model.quantizer.logits.weight.grad is None and model.quantizer.norm.weight.grad is None
    assert model.quantizer.codebook.grad is not None


def test_slam_logmel_codes_cannot_drift() -> None:
    """``code_input="logmel"`` + frozen code assignment: the targets of a waveform are the
    same after a training step (BEST-RQ's fixed targets); the encoder still learns."""
    from spokenlm.joint.slam import SLAMConfig, SLAMModel

    torch.manual_seed(0)
    model = SLAMModel(SLAMConfig(hidden=16, heads=2, ffn=32, conv_dim=8, speech_layers=1,
                                 shared_layers=1, code_entries=8, code_dim=8,
                                 frozen_code_assignment=True, code_input="logmel"))
    wav = torch.randn(2, 4000)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[:, 3:8] = True

    def codes() -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            out = model.encode_speech(wav, None)
            return model.quantizer(model.quantizer_input(wav, out)).codes

    before = codes()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model.train()
    model.speech_loss(wav, None, mask, torch.Generator().manual_seed(0))["loss"].backward()
    conv = model.frontend.feature_extractor.conv_layers[0].conv.weight
    old = conv.detach().clone()
    opt.step()
    assert not torch.equal(old, conv.detach())
    assert torch.equal(before, codes())
    with pytest.raises(Exception, match="code_input"):
        SLAMModel(SLAMConfig(code_input="mfcc"))
