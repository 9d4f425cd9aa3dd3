"""What a saved folder holds beyond pixelrep's own two files: sentence-transformers' config files and a model card.

SentenceTransformer(folder, trust_remote_code=True) reads modules.json, which names
pixelrep.st.PixelModule (a class of the installed pixelrep package: no code is read from the
folder), and config_sentence_transformers.json. PixelModule then loads config.json and
model.safetensors as PixelEncoder.from_pretrained does, and its own settings from pixelrep_module.json.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from pixelrep.files import atomic_write_bytes

MODULE_CLASS = "pixelrep.st.PixelModule"
MODULE_CONFIG = "pixelrep_module.json"
CHARS_PER_PATCH = 2.5   # Latin text at the default 13 px font; the README's measured figure


def write_sentence_transformers_files(folder: Path) -> None:
    """modules.json, config_sentence_transformers.json and pixelrep_module.json in `folder`."""
    from pixelrep.version import __version__

    files = {
        "modules.json": [{"idx": 0, "name": "0", "path": "", "type": MODULE_CLASS}],
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer", "__version__": {"pixelrep": __version__, "pytorch": torch.__version__},
            "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
        MODULE_CONFIG: {"normalize": True},   # unit vectors, as PixelEncoder.encode returns by default
    }
    for name, content in files.items():
        atomic_write_bytes(folder / name, (json.dumps(content, indent=2) + "\n").encode("utf-8"))


# --------------------------------------------------------------------------- model card

def read_results(results: str | os.PathLike | dict) -> dict:
    """The first pixelrep model's entry of a `pixelrep eval sts` results.json (a path or the loaded dict)."""
    if not isinstance(results, dict):
        try:
            results = json.loads(Path(results).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"results={os.fspath(results)!r} is not a readable results.json ({e}); pass the file "
                             f"that `pixelrep eval sts --out DIR` writes as DIR/results.json") from None
    models = [m for m in results.get("models", []) if m.get("kind") == "pixelrep"]
    if not models:
        raise ValueError("results has no pixelrep model under 'models'; pass a results.json from "
                         "`pixelrep eval sts --model ...`")
    return models[0]


def model_card(encoder, name: str, metadata: dict, results: str | os.PathLike | dict | None = None) -> str:
    """README.md: YAML metadata (hub model-index style) and a short description of the model and its limits."""
    import yaml

    m, r = encoder.model_config, encoder.render_config
    scores = read_results(results) if results is not None else None
    meta = {"library_name": "pixelrep", "license": "apache-2.0", "pipeline_tag": "sentence-similarity",
            "tags": ["pixelrep", "sentence-transformers", "sentence-similarity", "feature-extraction",
                     "pixel-language-model", "rendered-text"]}
    if scores is not None:
        meta["model-index"] = [{"name": name, "results": [
            {"task": {"type": "STS"},
             "dataset": {"name": f"{row['suite']} {row['task']}", "type": f"{row['suite']}/{row['task']}", "split": "test"},
             "metrics": [{"type": metric, "value": round(row[metric], 2), "name": f"{metric.title()} x100 (cosine)"}
                         for metric in ("spearman", "pearson")]}
            for row in scores["results"] if None not in (row["spearman"], row["pearson"])]}]   # null: undefined (NaN)

    params = sum(p.numel() for p in encoder.parameters())
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "", f"# {name}", "",
             metadata.get("description") or "A pixelrep sentence encoder.", ""]
    if metadata.get("trained") is False:
        lines += ["**Untrained**: random weights, for tests and baselines only.", ""]
    lines += [
        "pixelrep renders text as a strip of 16×16 grey patches and reads it with a vision transformer: no "
        "tokenizer, so any script the fonts draw is in the vocabulary, and a typo changes a few pixels.", "",
        "## Use", "", "```python", "from pixelrep import PixelEncoder", "",
        f'encoder = PixelEncoder.from_pretrained("{name}")',
        'emb = encoder.encode(["A man plays guitar.", "Ein Mann spielt Gitarre."])   # unit vectors',
        "", "from sentence_transformers import SentenceTransformer", "",
        f'model = SentenceTransformer("{name}", trust_remote_code=True)   # imports the installed pixelrep',
        "```", "",
        "## Model", "", "| | |", "|---|---|",
        f"| parameters | {params / 1e6:.2f} M |",
        f"| width × depth × heads | {m.width} × {m.depth} × {m.heads} |",
        f"| patches per token | {m.patches_per_token} |",
        f"| pooling | {m.pooling}{' (CLS token)' if m.cls_token else ''} |",
        f"| embedding dimension | {m.embedding_dim} |",
        f"| longest input (max_seq_length) | {r.max_patches} patches, about {int(CHARS_PER_PATCH * (r.max_patches - 1))} "
        f"Latin characters |", "",
        f"Render config (embeddings depend on it): `{json.dumps(r.to_dict())}`", ""]
    facts = {k: v for k, v in metadata.items() if k not in ("description", "trained")}
    if facts:
        lines += ["## Training", ""] + [f"- {k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in facts.items()]
        lines += [""]
    if scores is not None:
        lines += ["## Evaluation", "", f"`pixelrep eval sts` (model `{scores['id']}`; cosine similarity, ×100):", "",
                  "| suite | task | n | Spearman | Pearson |", "|---|---|---:|---:|---:|"]
        lines += [f"| {row['suite']} | {row['task']} | {row['n']} | {_score(row['spearman'])} | {_score(row['pearson'])} |"
                  for row in scores["results"]]
        lines += [f"| {s['suite']} | **{s['name']}** | | {_score(s['spearman'])} | {_score(s['pearson'])} |"
                  for s in scores.get("summaries", [])]
        lines += [""]
    lines += [
        "## Intended use and limits", "",
        "- For sentence similarity, clustering and retrieval of short texts (sentences, titles, short "
        "paragraphs) in any script the bundled fonts cover, including text with typos.",
        f"- Text longer than {r.max_patches} patches is cut (encode warns, naming how many inputs were cut).",
        "- Characters no bundled font has (emoji, rare scripts) are drawn as a box and carry no meaning.",
        "- Vectors depend on the render config above; other fonts or sizes give other vectors.",
        "- Check the scores above against your task: a small or briefly trained model is far below text "
        "encoders on English STS.", "",
        "## Licence", "",
        "Code and weights: Apache-2.0. The fonts the renderer uses ship with pixelrep (not in this folder) "
        "under the SIL Open Font License 1.1.", ""]
    return "\n".join(lines)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"   # results.json stores an undefined (NaN) score as null
