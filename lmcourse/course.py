"""The course map: chapters, their titles and the library modules they build.

One place holds the repository slug, so every Colab link (README badges, the
notebooks' install line) is derived from it.
"""
from __future__ import annotations

from dataclasses import dataclass

REPO_SLUG = "lmcourse/lmcourse"
BRANCH = "main"


@dataclass(frozen=True)
class Chapter:
    number: int
    slug: str
    title: str
    modules: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{self.number:02d}_{self.slug}.ipynb"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(0, "getting_started", "Getting started", ("setup", "doctor", "checks")),
    Chapter(1, "language_models", "Language models, from counting to predicting", ("ngram", "data")),
    Chapter(2, "tokenization", "Text preprocessing and tokenization", ("text", "tokenizers")),
    Chapter(3, "embeddings", "Embeddings and positions", ("embeddings",)),
    Chapter(4, "self_attention", "Self-attention, the math", ("attention",)),
    Chapter(5, "cross_entropy", "Cross-entropy, MLE and MAP", ("losses",)),
    Chapter(6, "transformer", "Building a Transformer", ("model", "interop")),
    Chapter(7, "pretraining", "Pretraining a tiny GPT", ("training",)),
    Chapter(8, "generation", "Generating text", ("generation",)),
    Chapter(9, "finetuning", "Fine-tuning and transfer learning", ("finetune",)),
    Chapter(10, "evaluation", "Evaluating language models", ("metrics",)),
    Chapter(11, "applications", "Applications", ("tasks",)),
    Chapter(12, "ethics_safety", "Ethics and safety, measured", ("safety",)),
    Chapter(13, "compute_scaling", "Compute and scaling", ("compute", "distributed")),
)


def colab_url(path: str) -> str:
    """Colab URL that opens `path` (e.g. "chapters/00_getting_started.ipynb") from GitHub."""
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/{path}"


def pip_spec() -> str:
    """What `pip install` needs to fetch the library on Colab."""
    return f"lmcourse @ git+https://github.com/{REPO_SLUG}@{BRANCH}"
