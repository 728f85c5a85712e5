"""Learned prompts for CLIP-IQA (seed 002, "CLIP-IQA+"): a few continuous context vectors, shared
by the overall aspect's base prompt pairs and prepended or appended to their words, are trained
through the frozen text encoder so that the scores rank pictures in a known order. No human
labels: the orders come from

- ``synthetic``: each picture degraded at graded strengths (blur, noise, JPEG, pixelation, over-
  and underexposure; monitor/iqa/ladder.py): the pristine picture is better than every rung,
  each rung better than the next;
- ``fixed``: the fixed prompts' own scores of the pristine pictures (the thesis's ground truth),
  which keeps the learned scorer's order between pictures where the fixed one had it.

The losses are a margin ranking loss over ordered pairs and a listwise one (ListNet: the cross
entropy between the softmax of the scores and the softmax of the target order). The image
encoder is frozen too: the pictures are embedded once, by the model directory's own ONNX
encoder, exactly as the daemon sees them. Only the context vectors change; the result is a new
set of text embeddings for the overall pairs, written into a model directory with the settings,
the loss curve and the held-out ladder SRCC before and after. The daemon uses them without torch.

Needs torch and open_clip (the `export` extra), and the weights the directory was exported from.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monitor.errors import VqmonError
from monitor.iqa.ladder import DISTORTIONS, fit, rungs, srcc_per_distortion
from monitor.scoring.clip_iqa import ClipIqa, SessionOptions
from monitor.scoring.model_dir import load_manifest
from monitor.scoring.prompts import LEARNED, OVERALL, PromptSet
from monitor.scoring.text_encoder import write_embeddings

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".webm"}
RUNGS = 1 + len(DISTORTIONS[0].levels)  # the pristine picture and its levels


@dataclass
class LearnSettings:
    context: int = 4  # learnable context vectors
    position: Literal["prepend", "append"] = "prepend"
    steps: int = 300
    lr: float = 2e-3
    margin: float = 0.05  # margin ranking loss, in score units (probabilities)
    loss: Literal["margin", "listwise", "both"] = "both"
    # "synthetic" by default: orders known without trusting the starting scorer. The fixed
    # prompts' order (the thesis's) is only as good as they are: on a random-weight model it is
    # noise, and it made the held-out ladders worse (mean SRCC 0.03 -> -0.05 to 0.16 over three
    # seeds, against 0.22-0.38 with synthetic orders alone).
    orders: Literal["synthetic", "fixed", "both"] = "synthetic"
    batch: int = 8  # pictures (with their ladders) per step
    held_out: float = 0.25  # of the sources (image files, clips), never trained on
    frames_per_clip: int = 8
    seed: int = 0


@dataclass
class LearnResult:
    out_dir: Path
    settings: LearnSettings
    loss_curve: list[float]
    srcc_fixed: float  # held-out ladders, mean SRCC, fixed prompts
    srcc_learned: float  # ...and learned prompts
    train_images: int
    held_out_images: int
    per_distortion: dict[str, dict[str, float]] = field(default_factory=dict)

    def report(self) -> str:
        lines = [
            f"{self.out_dir}: learned {self.settings.context} context vectors ({self.settings.position}), "
            f"{self.settings.steps} steps on {self.train_images} pictures, {self.held_out_images} held out",
            f"loss {self.loss_curve[0]:.4f} -> {self.loss_curve[-1]:.4f}",
            f"{'held-out ladders (SRCC)':<26} " + " ".join(f"{d.name:>12}" for d in DISTORTIONS) + f" {'mean':>8}",
        ]
        for name, mean in (("fixed prompts", self.srcc_fixed), ("learned prompts", self.srcc_learned)):
            per = self.per_distortion[name]
            lines.append(f"{name:<26} " + " ".join(f"{per[d.name]:>12.3f}" for d in DISTORTIONS) + f" {mean:>8.3f}")
        return "\n".join(lines)


def _import_torch():
    try:
        import open_clip
        import torch
    except ImportError as exc:
        raise VqmonError(
            f"prompts learn needs torch and open_clip ({exc.name} is missing): pip install -e '.[export]'"
        ) from None
    return torch, open_clip


# ---------------------------------------------------------------------------------------------
# Pictures


def _sources(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise VqmonError(f"{root}: no such file or folder of pictures or clips")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if not found:
        raise VqmonError(f"{root}: no pictures ({', '.join(sorted(IMAGE_SUFFIXES))}) or clips in it")
    return found


def _pictures(source: Path, frames_per_clip: int) -> Iterator[np.ndarray]:
    import cv2

    if source.suffix.lower() in IMAGE_SUFFIXES:
        img = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if img is None:
            raise VqmonError(f"{source}: not a picture OpenCV can read")
        yield fit(img)
        return
    from monitor.capture import open_decoder
    from monitor.config import CaptureConfig

    dec = open_decoder(str(source), "file", CaptureConfig(), False)
    try:
        total = dec.total_frames or frames_per_clip * 25
        step = max(1, total // frames_per_clip)
        for i, raw in enumerate(dec.frames()):
            if i % step == 0:
                yield fit(raw.full())
    finally:
        dec.close()


def _ladder(img: np.ndarray) -> list[np.ndarray]:
    """The pristine picture, then each distortion's levels from mild to severe (its ladders,
    sharing their first rung)."""
    return [img] + [picture for d in DISTORTIONS for picture in rungs(img, d)[1:]]


def _embed_ladders(scorer: ClipIqa, pictures: list[np.ndarray]) -> np.ndarray:
    """(pictures, 1 + distortions x levels, D) unit embeddings, as the daemon sees each view."""
    return np.stack([scorer.embed_pictures(_ladder(img)) for img in pictures])


# ---------------------------------------------------------------------------------------------
# The text side, in torch


class PromptLearner:
    """open_clip's text encoder with context vectors spliced into the token embeddings."""

    def __init__(self, torch, model, tokenizer, pairs: list[tuple[str, str]], settings: LearnSettings, device: str):
        for attr in ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask"):
            if not hasattr(model, attr):
                raise VqmonError(
                    "prompts learn supports open_clip's CLIP text tower (token_embedding, transformer); "
                    f"this model has no {attr}"
                )
        self.torch, self.model, self.settings, self.device = torch, model, settings, device
        texts = [t for pair in pairs for t in pair]
        self.ids = tokenizer(texts).to(device)
        self.eot = self.ids.argmax(dim=-1)  # CLIP's end token has the largest id
        length = self.ids.shape[1]
        if int(self.eot.max()) + settings.context >= length:
            raise VqmonError(f"a prompt is too long for {settings.context} context vectors in {length} tokens")
        width = model.token_embedding.weight.shape[1]
        gen = torch.Generator().manual_seed(settings.seed)
        # CoOp's initialisation: small random vectors, so the fixed words dominate at the start.
        self.ctx = torch.nn.Parameter((torch.randn(settings.context, width, generator=gen) * 0.02).to(device))

    def encode(self, with_context: bool = True):
        """Unit text embeddings, (texts, D)."""
        torch, m = self.torch, self.model
        x = m.token_embedding(self.ids)
        eot = self.eot
        n = self.settings.context if with_context else 0
        if n:
            rows = []
            for i in range(x.shape[0]):
                # prepend: after the start token; append: before the end token. The sequence keeps
                # its length: the padding at its end makes room.
                at = 1 if self.settings.position == "prepend" else int(eot[i])
                rows.append(torch.cat([x[i, :at], self.ctx.to(x.dtype), x[i, at : x.shape[1] - n]]))
            x = torch.stack(rows)
            eot = eot + n
        x = x + m.positional_embedding.to(x.dtype)
        x = m.transformer(x, attn_mask=m.attn_mask)
        x = m.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eot]
        proj = m.text_projection
        if proj is not None:
            x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
        return x / x.norm(dim=-1, keepdim=True)


def _scores(torch, text, images, logit_scale: float):
    """Overall score per image: the mean over pairs of the positive prompt's probability.
    ``text``: (pairs * 2, D) as (pos, neg) per pair; ``images``: (..., D)."""
    t = text.reshape(-1, 2, text.shape[-1])
    logits = logit_scale * torch.einsum("...d,pkd->...pk", images, t)
    return torch.softmax(logits, dim=-1)[..., 0].mean(dim=-1)


def _margin_loss(torch, better, worse, margin: float):
    return torch.relu(margin - (better - worse)).mean()


def _listwise_loss(torch, scores, target, temperature: float = 0.05):
    """ListNet: cross entropy from the target order's softmax to the scores' (rows are lists)."""
    p = torch.softmax(target / temperature, dim=-1)
    return -(p * torch.log_softmax(scores / temperature, dim=-1)).sum(dim=-1).mean()


def _ladder_losses(torch, s, settings: LearnSettings):
    """``s``: (batch, rungs) scores of ladders, pristine first within each distortion block."""
    d, levels = len(DISTORTIONS), RUNGS - 1
    pristine = s[:, :1].expand(-1, d)  # (B, d)
    rungs = s[:, 1:].reshape(s.shape[0], d, levels)
    lists = torch.cat([pristine[..., None], rungs], dim=-1)  # (B, d, RUNGS), best first
    losses = []
    if settings.loss in ("margin", "both"):
        i, j = np.triu_indices(RUNGS, k=1)
        losses.append(_margin_loss(torch, lists[..., i], lists[..., j], settings.margin))
    if settings.loss in ("listwise", "both"):
        target = -torch.arange(RUNGS, dtype=s.dtype, device=s.device).expand_as(lists) / (RUNGS - 1)
        losses.append(_listwise_loss(torch, lists.reshape(-1, RUNGS), target.reshape(-1, RUNGS)))
    return sum(losses)


def _fixed_order_losses(torch, s, s0, settings: LearnSettings):
    """Keep the fixed prompts' order between different pictures (their pristine rungs)."""
    losses = []
    if settings.loss in ("margin", "both"):
        i, j = np.nonzero(s0[:, None] - s0[None, :] > 0.02)  # clearly ordered pairs only
        if i.size:
            losses.append(_margin_loss(torch, s[i], s[j], settings.margin))
    if settings.loss in ("listwise", "both") and s.shape[0] > 1:
        target = torch.as_tensor(s0, dtype=s.dtype, device=s.device)
        losses.append(_listwise_loss(torch, s[None], target[None]))
    return sum(losses) if losses else s.sum() * 0.0


def _held_out_srcc(scores: np.ndarray) -> dict[str, float]:
    """Per distortion, the mean over pictures of the SRCC of each ladder with its known order.
    ``scores``: (pictures, 1 + distortions x levels), laid out as ``_ladder``."""
    n, levels = len(scores), RUNGS - 1
    pristine = np.repeat(scores[:, None, :1], len(DISTORTIONS), axis=1)
    return srcc_per_distortion(np.concatenate([pristine, scores[:, 1:].reshape(n, len(DISTORTIONS), levels)], axis=2))


# ---------------------------------------------------------------------------------------------


def learn_prompts(
    model_dir: str | Path,
    images: str | Path,
    out_dir: str | Path,
    weights: str | None = None,
    pretrained: str | None = None,
    random_init: bool = False,
    settings: LearnSettings | None = None,
    device: str = "cpu",
) -> LearnResult:
    from exporters.clip_export import load_model

    settings = settings or LearnSettings()
    if settings.context < 1 or settings.steps < 1 or not 0 < settings.held_out < 1:
        raise VqmonError("--context and --steps must be at least 1, --held-out between 0 and 1")
    torch, _open_clip = _import_torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise VqmonError("--device cuda: torch sees no CUDA GPU here; use --device cpu")
    src = Path(model_dir)
    manifest = load_manifest(src)
    if bool(manifest.get("random_init")) != bool(random_init):
        raise VqmonError(
            f"{src} was exported from {manifest.get('weights', {}).get('source')}: give the same weights "
            "(--random-init only for a random-init model)"
        )
    _torch, _oc, model, _pre, tokenizer = load_model(
        str(manifest["arch"]), weights, pretrained, random_init, seed=int(manifest.get("seed", 0))
    )
    model = model.to(device).float()
    for p in model.parameters():
        p.requires_grad_(False)
    scorer = ClipIqa(src, SessionOptions(device="cpu"))
    base = scorer.prompts
    overall_pairs = base.aspects[OVERALL]
    learner = PromptLearner(torch, model, tokenizer, overall_pairs, settings, device)
    with torch.no_grad():
        fixed_text = learner.encode(with_context=False)
    # The weights given must be the ones the directory was exported from: its image embeddings
    # are the ONNX encoder's, and the learned text must live in the same space.
    stored = scorer.text[[i for i, a in enumerate(base.pair_aspects) if a == OVERALL]]
    if not base.learned:
        cos = float((fixed_text.cpu().numpy().reshape(stored.shape) * stored).sum(axis=-1).min())
        if cos < 0.999:
            raise VqmonError(
                f"these weights do not match {src}'s (prompt embedding cosine {cos:.3f}); give the weights "
                "it was exported from"
            )

    # Pictures, split by source so frames of one clip are never on both sides.
    sources = _sources(Path(images))
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(sources))
    n_held = max(1, round(len(sources) * settings.held_out)) if len(sources) > 1 else 0
    if n_held == 0:
        raise VqmonError(f"{images}: at least two pictures or clips are needed (some are held out to check)")
    held_sources = {sources[i] for i in order[:n_held]}
    train_pics: list[np.ndarray] = []
    held_pics: list[np.ndarray] = []
    for s in sources:
        (held_pics if s in held_sources else train_pics).extend(_pictures(s, settings.frames_per_clip))
    t0 = time.monotonic()
    train = torch.as_tensor(_embed_ladders(scorer, train_pics), device=device)
    held = torch.as_tensor(_embed_ladders(scorer, held_pics), device=device)
    log.info("embedded %d + %d ladders in %.1f s", len(train_pics), len(held_pics), time.monotonic() - t0)
    scale = scorer.logit_scale
    with torch.no_grad():
        s0_all = _scores(torch, fixed_text, train[:, 0], scale).cpu().numpy()
        fixed_held = _scores(torch, fixed_text, held, scale).cpu().numpy()

    opt = torch.optim.Adam([learner.ctx], lr=settings.lr)
    curve: list[float] = []
    gen = np.random.default_rng(settings.seed + 1)
    for step in range(settings.steps):
        idx = gen.choice(len(train_pics), size=min(settings.batch, len(train_pics)), replace=False)
        text = learner.encode()
        s = _scores(torch, text, train[idx], scale)  # (B, rungs)
        loss = s.sum() * 0.0
        if settings.orders in ("synthetic", "both"):
            loss = loss + _ladder_losses(torch, s, settings)
        if settings.orders in ("fixed", "both"):
            loss = loss + _fixed_order_losses(torch, s[:, 0], s0_all[idx], settings)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
        if step % 50 == 0:
            log.info("step %d: loss %.4f", step, curve[-1])
    with torch.no_grad():
        learned_text = learner.encode()
        learned_held = _scores(torch, learned_text, held, scale).cpu().numpy()
    per = {"fixed prompts": _held_out_srcc(fixed_held), "learned prompts": _held_out_srcc(learned_held)}
    srcc_fixed = float(np.mean(list(per["fixed prompts"].values())))
    srcc_learned = float(np.mean(list(per["learned prompts"].values())))

    # The overall pairs' embeddings become the learned ones; the other aspects keep theirs.
    text = scorer.text.copy()
    rows = [i for i, a in enumerate(base.pair_aspects) if a == OVERALL]
    text[rows] = learned_text.cpu().numpy().reshape(len(rows), 2, -1)
    # The curve kept in the manifest: every loss for short runs, else 100 points.
    every = max(1, len(curve) // 100)
    learned: dict[str, Any] = {
        "settings": asdict(settings),
        "aspects": [OVERALL],
        "loss_curve": [round(v, 5) for v in curve[::every]],
        "loss_every_steps": every,
        "train_pictures": len(train_pics),
        "held_out_pictures": len(held_pics),
        "held_out_sources": sorted(p.name for p in held_sources),
        "held_out_srcc": {"fixed": round(srcc_fixed, 4), "learned": round(srcc_learned, 4)},
        "context_vectors": learner.ctx.detach().cpu().numpy().round(6).tolist(),
        "versions": {"torch": torch.__version__},
    }
    out = _writable_copy(src, Path(out_dir))
    source = f"{LEARNED}{settings.context}x{settings.position}"
    write_embeddings(out, PromptSet(base.name, base.aspects, source), text, learned=learned)
    return LearnResult(out, settings, curve, srcc_fixed, srcc_learned, len(train_pics), len(held_pics), per)


def _writable_copy(src: Path, out: Path) -> Path:
    """``out`` itself when it is the model directory; otherwise a fresh copy of it."""
    if out.resolve() == src.resolve():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".learn-", dir=out.parent))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("trt-cache"))
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def dump(result: LearnResult) -> str:
    return json.dumps(
        {
            "out_dir": str(result.out_dir),
            "settings": asdict(result.settings),
            "loss_first": result.loss_curve[0],
            "loss_last": result.loss_curve[-1],
            "held_out_srcc": {"fixed": result.srcc_fixed, "learned": result.srcc_learned},
            "per_distortion": result.per_distortion,
            "train_pictures": result.train_images,
            "held_out_pictures": result.held_out_images,
        },
        indent=1,
    )
