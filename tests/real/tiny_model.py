#!/usr/bin/env python3
"""Make a tiny random-weight model that the real vLLM CPU build can serve. No download.

    tests/real/tiny_model.py --arch {qwen2,qwen3_moe} OUT_DIR

Writes a Hugging Face model directory (config.json, safetensors weights, tokenizer.json,
tokenizer_config.json with a chat template) to OUT_DIR and prints OUT_DIR's absolute path as the
last stdout line. Cached: when OUT_DIR/.recipe already holds this recipe's hash (this file's text,
the architecture, the transformers/tokenizers versions), nothing is rebuilt.

- The weights are random (seeded), saved by `transformers` itself (`save_pretrained`), so the
  files are what a real checkpoint of that architecture looks like to vLLM's loader.
- The tokenizer is a byte-level BPE trained here with `tokenizers` on local text (Python's own
  standard-library sources plus the chat-format strings), with the ChatML and tool-call special
  tokens as single tokens: vLLM's `hermes` and `qwen3_coder` tool parsers look up
  `<tool_call>` / `</tool_call>` in the vocabulary and refuse to start without them.
- Chat templates: ChatML with tools. qwen2 follows Qwen2.5's Hermes style (tool JSON schemas in
  `<tools></tools>`, calls as `<tool_call>{"name": ..., "arguments": ...}</tool_call>`, results in
  `<tool_response>`); qwen3_moe follows the Qwen3-Coder style (calls as
  `<tool_call><function=NAME><parameter=KEY>VALUE</parameter></function></tool_call>`), which is
  what vLLM's `qwen3_coder` parser reads. Both templates are written here, not copied.
- Head size 32 (vLLM's CPU attention needs >= 32).

It needs torch, transformers and tokenizers: when they are not importable it re-executes itself
with the Python of the `vllm` venv from tests/real/build.sh (which carries all three).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]

# Hermes / Qwen2.5 style: tools listed as JSON in <tools>, calls as JSON in <tool_call>.
QWEN2_CHAT_TEMPLATE = (HERE / "chat_templates" / "qwen2_hermes.jinja").read_text()

# Qwen3-Coder style: tools listed as <function> blocks, calls as XML-ish <function=...> blocks.
QWEN3_CODER_CHAT_TEMPLATE = (HERE / "chat_templates" / "qwen3_coder.jinja").read_text()

VOCAB_SIZE = 2048
MAX_POSITIONS = 32768  # >= the role's default max_model_len (16384)


def _reexec_in_vllm_venv() -> None:
    out = subprocess.run(
        [str(HERE / "build.sh"), "vllm"], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    venv = out.strip().splitlines()[-1]
    python = os.path.join(venv, "bin", "python")
    os.execv(python, [python, __file__, *sys.argv[1:]])


def recipe_hash(arch: str) -> str:
    import tokenizers
    import transformers

    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(QWEN2_CHAT_TEMPLATE.encode() + QWEN3_CODER_CHAT_TEMPLATE.encode())
    h.update(f"{arch} {transformers.__version__} {tokenizers.__version__}".encode())
    return h.hexdigest()[:16]


def corpus() -> list[str]:
    """Local, deterministic training text: a few standard-library modules + chat strings."""
    import json as json_mod
    import textwrap

    texts = []
    for mod in (json_mod, textwrap, argparse, hashlib, shutil):
        src = getattr(mod, "__file__", None)
        if src and os.path.exists(src):
            texts.append(Path(src).read_text(encoding="utf-8"))
    texts.append(QWEN2_CHAT_TEMPLATE)
    texts.append(QWEN3_CODER_CHAT_TEMPLATE)
    texts.append(
        'Hello! What is the weather in Paris? {"name": "get_weather", "arguments": '
        '{"city": "Paris"}} <function=get_weather> <parameter=city> Paris </parameter>'
    )
    return texts


def make_tokenizer(out: Path) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=MAX_POSITIONS,
    )
    fast.save_pretrained(out)
    return int(tok.get_vocab_size())


def make_model(arch: str, out: Path, vocab_size: int, eos_id: int, pad_id: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    common = {
        "vocab_size": vocab_size,
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,  # head size 128 / 4 = 32 (vLLM CPU: >= 32)
        "num_key_value_heads": 2,
        "max_position_embeddings": MAX_POSITIONS,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "bos_token_id": pad_id,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "torch_dtype": "bfloat16",
    }
    if arch == "qwen2":
        from transformers import Qwen2Config

        config = Qwen2Config(intermediate_size=256, **common)
    else:
        from transformers import Qwen3MoeConfig

        config = Qwen3MoeConfig(
            head_dim=32,
            intermediate_size=256,
            moe_intermediate_size=64,
            num_experts=4,
            num_experts_per_tok=2,
            decoder_sparse_step=1,
            norm_topk_prob=True,
            **common,
        )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def build(arch: str, out: Path) -> Path:
    out = out.resolve()
    want = recipe_hash(arch)
    marker = out / ".recipe"
    if marker.is_file() and marker.read_text().strip() == want:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two callers never build one directory at once
        if marker.is_file() and marker.read_text().strip() == want:
            return out
        return _build_locked(arch, out, want)


def _build_locked(arch: str, out: Path, want: str) -> Path:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    vocab_size = make_tokenizer(tmp)
    cfg_path = tmp / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = QWEN2_CHAT_TEMPLATE if arch == "qwen2" else QWEN3_CODER_CHAT_TEMPLATE
    cfg_path.write_text(json.dumps(cfg, indent=2))
    vocab = json.loads((tmp / "tokenizer.json").read_text())["model"]["vocab"]
    added = {
        t["content"]: t["id"]
        for t in json.loads((tmp / "tokenizer.json").read_text())["added_tokens"]
    }
    vocab.update(added)
    make_model(arch, tmp, vocab_size, eos_id=vocab["<|im_end|>"], pad_id=vocab["<|endoftext|>"])
    (tmp / ".recipe").write_text(want + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=["qwen2", "qwen3_moe"], required=True)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    try:
        import tokenizers  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        _reexec_in_vllm_venv()
    print(build(args.arch, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
