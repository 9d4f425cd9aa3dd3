"""sentence-transformers integration: PixelModule, the input module a saved pixelrep folder names.

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("my-model", trust_remote_code=True)   # a PixelEncoder.save_pretrained folder

sentence-transformers >= 6 imports a module class from outside its own package only with
trust_remote_code=True; for this folder that imports pixelrep.st from the installed pixelrep and
runs no code from the folder itself. The module renders the texts (preprocess) and encodes the
pixels (forward) at encode()'s precision ("precision" in pixelrep_module.json, "auto" unless set), so
SentenceTransformer.encode gives the vectors PixelEncoder.encode gives.
Text longer than max_seq_length patches is cut silently here, as sentence-transformers cuts text
models at max_seq_length tokens.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    from sentence_transformers.base.modules import InputModule          # sentence-transformers >= 6
except ImportError:
    from sentence_transformers.models import InputModule                # 5.x

from pixelrep.batch import collate
from pixelrep.encoder import PixelEncoder, check_texts, resolve_precision
from pixelrep.export import MODULE_CONFIG
from pixelrep.pretrained import write_checkpoint


class PixelModule(InputModule):
    """A PixelEncoder as a sentence-transformers module: texts -> rendered strips -> sentence_embedding."""

    config_file_name = MODULE_CONFIG
    config_keys = ["normalize", "precision"]
    save_in_root = True          # config.json and model.safetensors sit in the folder's root, as pixelrep writes them

    def __init__(self, encoder: PixelEncoder, normalize: bool = True, precision: str = "auto"):
        super().__init__()
        resolve_precision(precision, "cpu")   # a bad value fails at load, naming the choices
        self.encoder = encoder
        self.normalize = normalize
        self.precision = precision   # encode()'s: "auto" (bf16 where native), "bf16" or "fp32"

    def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        """Render a batch of texts (the prompt put before each): pixels uint8 [B, ps, P*ps], patch_mask [B, P]."""
        texts = check_texts(inputs, name="inputs")
        if prompt:
            texts = [prompt + t for t in texts]
        pixels, patch_mask = collate(self.encoder.renderer.render_batch(texts))
        return {"pixels": pixels, "patch_mask": patch_mask}

    def tokenize(self, texts, **kwargs) -> dict[str, torch.Tensor]:
        """What sentence-transformers 5.x calls instead of preprocess."""
        return self.preprocess(texts, **kwargs)

    def forward(self, features: dict, **kwargs) -> dict:
        pixels, patch_mask = features["pixels"], features["patch_mask"]
        # Inference (no gradient: SentenceTransformer.encode) runs at PixelEncoder.encode's precision;
        # fine-tuning runs as the trainer sets it.
        bf16 = not torch.is_grad_enabled() and resolve_precision(self.precision, pixels.device) == "bf16"
        with torch.autocast(pixels.device.type, dtype=torch.bfloat16, enabled=bf16):
            embedding = self.encoder(pixels, patch_mask).float()
        features["sentence_embedding"] = F.normalize(embedding, dim=-1) if self.normalize else embedding
        return features

    def get_embedding_dimension(self) -> int:
        return self.encoder.embedding_dim

    get_sentence_embedding_dimension = get_embedding_dimension   # the 5.x name

    @property
    def max_seq_length(self) -> int:
        """In patches; see PixelEncoder.max_seq_length."""
        return self.encoder.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.encoder.max_seq_length = value

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        """pixelrep's config.json + model.safetensors (so PixelEncoder.from_pretrained reads the folder too)."""
        write_checkpoint(output_path, model=self.encoder.model_config, render=self.encoder.render_config,
                         state=self.encoder.state_dict())
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             **kwargs) -> "PixelModule":
        hub = dict(subfolder=subfolder, token=token, cache_folder=cache_folder, revision=revision,
                   local_files_only=local_files_only)
        folder = cls.load_dir_path(model_name_or_path, **hub)
        return cls(PixelEncoder.from_pretrained(folder), **cls.load_config(model_name_or_path, **hub))
