"""Perplexity of text under a local Hugging Face causal LM (for PPX / GenPPL of transcripts).

The directory holds a causal LM and its tokenizer: ``AutoTokenizer`` files (a downloaded
GPT-2, OPT or LLaMA, or a tiny one a test saves), or the ``text_tokenizer.json`` of a
``spokenlm lm pretrain-text`` model (word/char symbols at ids 0.., BOS from the config).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from ..common.device import resolve_device
from ..common.hub import loading, local_or_hub


class TextLM:
    """A causal text LM that scores strings: ``nll(texts, contexts)``."""

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..lm.text_tokenizer import TOKENIZER_FILE, TextTokenizer

        self.path = local_or_hub(path, "text LM")
        self.spokenlm_tokenizer: TextTokenizer | None = None
        with loading(self.path, "a causal LM with its tokenizer", "pass a local HF model "
                     "directory with its tokenizer files, or a `spokenlm lm pretrain-text` "
                     "final/ dir"):
            self.model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True)
            if (self.path / TOKENIZER_FILE).exists():
                self.spokenlm_tokenizer = TextTokenizer.load(self.path / TOKENIZER_FILE)
                self.bos_id = self.model.config.bos_token_id
            else:
                self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                self.bos_id = self.tokenizer.bos_token_id
        self.device = resolve_device(device)
        self.model.to(self.device).eval()

    def _ids(self, text: str) -> list[int]:
        if self.spokenlm_tokenizer is not None:
            return self.spokenlm_tokenizer.encode(text)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def nll(self, texts: Sequence[str], contexts: Sequence[str] | None = None
            ) -> list[tuple[float, int]]:
        """(summed negative log-likelihood in nats, scored tokens) of each text, given its
        context (the context's tokens are fed but not scored). A BOS token starts every
        sequence when the tokenizer has one (else the first token is not scored)."""
        bos = self.bos_id
        out = []
        for i, text in enumerate(texts):
            ctx = self._ids(contexts[i]) if contexts else []
            target = self._ids(text)
            if contexts and ctx and target:
                target = self._ids(" " + text)
            ids = ([bos] if bos is not None else []) + ctx + target
            n_score = min(len(target), len(ids) - 1)
            if n_score <= 0:
                out.append((0.0, 0))
                continue
            x = torch.tensor([ids], device=self.device)
            logp = torch.log_softmax(self.model(x).logits[0, :-1].float(), -1)  # (L-1, V)
            tgt = x[0, 1:]
            lp = logp.gather(1, tgt[:, None])[:, 0][-n_score:]
            out.append((float(-lp.sum()), int(n_score)))
        return out

    def perplexity(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> float:
        """exp(total NLL / total tokens) over all texts (nan when nothing is scored)."""
        scores = self.nll(texts, contexts)
        n = sum(k for _, k in scores)
        return math.exp(sum(s for s, _ in scores) / n) if n else float("nan")
