"""Fault styles and clean-picture events for the labelled clip generator.

Every fault type has several style families (how the fault looks on a real system), each with
randomised parameters; `FAMILIES` lists them. The clean events (`Event`) are the hard
negatives: things real footage does that are not faults (fades, flashes, whip pans, shake, an
IR day/night switch, slates). A fault may start abruptly or come on gradually (`ramp_s`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from monitor.demo import colour_bars, jpeg_roundtrip

FAMILIES: dict[str, tuple[str, ...]] = {
    "black": ("cut", "fade", "osd", "crushed"),
    "freeze": ("still", "noisy", "osd", "graphics"),
    "blur": ("defocus", "gradual", "lens", "osd"),
    "noise": ("gaussian", "colour", "shot", "gradual", "impulse"),
    "overexposed": ("gain", "gradual", "washout", "gamma"),
    "underexposed": ("gain", "gradual", "gamma", "osd", "lowlight"),
    "blocking": ("jpeg", "mosaic", "nearest", "macroblock"),
    "no_signal": ("bars", "flat_card", "moving_logo", "vendor_card"),
    "obstruction": ("slide", "spray", "hand", "corner"),
}
# Bumped when a fault's rendering changes, so only that fault's cached clips are made again.
STYLE_VERSION: dict[str, int] = {"obstruction": 4, "underexposed": 3}
# An underexposed picture keeps this share of itself above blackdetect's 10 % of full scale (with
# a margin: 30 levels, not 25.5). Below that it is a black picture by the definition the black
# check and ffmpeg use, and labelling it underexposed made a label no check could honour (train:
# a cat photo at gain x0.12 read luma 13 +- 4, every pixel under 25).
UNDEREXPOSED_LIT_SHARE, UNDEREXPOSED_LIT_LEVEL = 0.03, 30.0
EVENT_KINDS = ("fade", "flash", "whip", "ir_switch", "slate", "exposure_hunt")


@dataclass(frozen=True)
class FaultStyle:
    fault: str
    family: str
    start: float
    end: float
    ramp_s: float = 0.0  # gradual onset over this long (0 = abrupt)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def osd_on_top(self) -> bool:
        """The camera's graphics stay live over the faulty picture."""
        return self.family in ("osd", "graphics") or self.fault in ("blur", "noise", "underexposed", "overexposed")


@dataclass(frozen=True)
class Event:
    """A clean-picture event in [start, start + length)."""

    kind: str
    start: float
    length: float
    params: dict[str, Any] = field(default_factory=dict)


def sample_fault(
    fault: str, rng: np.random.Generator, start: float, end: float, family: str | None = None
) -> FaultStyle:
    fam = family or str(rng.choice(FAMILIES[fault]))
    u = rng.uniform
    p: dict[str, Any] = {}
    ramp = 0.0
    if fault == "black":
        p = {"level": float(u(0, 14)), "noise": float(u(0, 2.5))}
        if fam == "fade":
            ramp = float(u(0.3, 1.5))
        if fam == "crushed":
            p["gain"] = float(u(0.02, 0.045))
    elif fault == "freeze":
        p = {"noise": float(u(1.5, 4.0)) if fam == "noisy" else 0.0}
    elif fault == "blur":
        p = {"sigma": float(u(2.5, 8.0))}
        if fam == "gradual":
            ramp = float(u(2.5, min(6.0, (end - start) * 0.7)))
        if fam == "lens":
            p = {"radius": float(u(4.0, 12.0))}
    elif fault == "noise":
        p = {"sigma": float(u(12.0, 40.0))}
        if fam == "gradual":
            ramp = float(u(1.5, 3.5))
        if fam == "impulse":
            p = {"fraction": float(u(0.04, 0.15))}
    elif fault == "overexposed":
        p = {"gain": float(u(2.2, 4.0))}
        if fam == "gradual":
            ramp = float(u(1.5, 4.0))
        if fam == "washout":
            p = {"gain": float(u(0.5, 0.8)), "offset": float(u(120, 170))}
        if fam == "gamma":
            p = {"gamma": float(u(0.2, 0.4)), "gain": float(u(1.2, 1.6))}
    elif fault == "underexposed":
        p = {"gain": float(u(0.1, 0.3))}
        if fam == "gradual":
            ramp = float(u(1.5, 4.0))
        if fam == "gamma":
            p = {"gamma": float(u(2.5, 4.0))}
        if fam == "lowlight":
            # Too little light for the sensor: the scene darkens before the sensor's noise is added,
            # which the camera's gain then lifts, and the black level clips the shadows to black.
            p = {"gain": float(u(0.1, 0.3)), "noise": float(u(2.5, 5.0)), "crush": float(u(0.0, 10.0))}
    elif fault == "blocking":
        p = {"quality": int(rng.integers(2, 9))}
        if fam in ("mosaic", "nearest"):
            p = {
                "block": float(u(10, 32)) if fam == "mosaic" else float(rng.choice([4, 6, 8, 10])),
                "offset": rng.integers(0, 8, 2).tolist(),
            }
        if fam == "macroblock":
            p = {"quality": int(rng.integers(3, 12))}
    elif fault == "no_signal":
        p = {
            "colour": [
                int(x) for x in rng.choice([[120, 40, 0], [90, 90, 90], [20, 20, 20], [140, 60, 20], [60, 60, 60]])
            ],
            "text": str(rng.choice(["NO SIGNAL", "No Video", "VIDEO LOSS", "Signal lost"])),
            "variant": int(rng.integers(0, 3)),
        }
    elif fault == "obstruction":
        p = {"coverage": float(u(0.55, 1.0)), "level": float(u(8, 45)), "seed": int(rng.integers(0, 1 << 30))}
        if fam == "hand":
            p["level"] = float(u(60, 150))
        if fam == "corner":
            p["coverage"] = float(u(0.5, 0.75))
        if fam == "spray":
            p["grow_s"] = float(u(0.8, 2.5))  # paint builds up over the lens
    return FaultStyle(fault, fam, start, end, ramp, p)


def sample_event(kind: str, rng: np.random.Generator, start: float) -> Event:
    u = rng.uniform
    if kind == "fade":
        return Event(kind, start, float(u(0.3, 1.6)), {"depth": float(u(0.85, 1.0))})
    if kind == "flash":
        return Event(kind, start, float(rng.integers(1, 5)) / 25.0, {"strength": float(u(0.5, 1.0))})
    if kind == "whip":
        return Event(kind, start, float(u(0.25, 0.8)), {"direction": int(rng.choice([-1, 1]))})
    if kind == "ir_switch":
        return Event(kind, start, 1e9, {"gain": float(u(0.6, 1.4)), "noise": float(u(2.0, 5.0))})
    if kind == "slate":
        return Event(kind, start, float(u(2.0, 5.0)), {"seed": int(rng.integers(0, 1 << 30))})
    if kind == "exposure_hunt":
        return Event(kind, start, float(u(3.0, 8.0)), {"amplitude": float(u(0.1, 0.3))})
    raise ValueError(f"unknown event {kind!r}")


def _gain(img: np.ndarray, gain: float, offset: float = 0.0) -> np.ndarray:
    return cv2.convertScaleAbs(img, alpha=gain, beta=offset)


def _gamma(img: np.ndarray, gamma: float) -> np.ndarray:
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def _blend(a: np.ndarray, b: np.ndarray, e: float) -> np.ndarray:
    return a if e <= 0 else b if e >= 1 else cv2.addWeighted(a, 1 - e, b, e, 0)


def _soft_mask(h: int, w: int, rng: np.random.Generator, coverage: float, shape: str, t: float) -> np.ndarray:
    """1 where covered. shape: slide (from the left, wobbling) or corner (ellipse)."""
    if shape == "corner":
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (0, h), (int(w * coverage * 1.25), int(h * coverage * 1.6)), 0, 0, 360, 1.0, -1)
    else:
        mask = np.zeros((h, w), np.float32)
        edge = int(w * coverage + 0.02 * w * np.sin(t * 3))
        mask[:, : max(0, edge)] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), max(2.0, w / 50))


class FaultRenderer:
    """Applies one FaultStyle to clean frames (keeps the state a freeze needs)."""

    def __init__(self, style: FaultStyle, width: int, height: int, rng: np.random.Generator) -> None:
        self.s, self.w, self.h, self.rng = style, width, height, rng
        self.frozen: np.ndarray | None = None
        self._darkening: float | None = None  # the underexposure applied (gain or gamma), fixed at its onset
        p = style.params
        self.mask: np.ndarray | None = None
        self._field: np.ndarray | None = None
        if style.fault == "obstruction" and style.family == "corner":
            self.mask = _soft_mask(height, width, np.random.default_rng(p["seed"]), p["coverage"], "corner", 0.0)
        if style.fault == "obstruction" and style.family == "spray":
            blotches = np.random.default_rng(p["seed"]).uniform(0, 1, (6, 8)).astype(np.float32)
            self._field = cv2.resize(blotches, (width, height), interpolation=cv2.INTER_CUBIC)
        # Shading of an object far out of focus on the lens: smooth at the scale of the picture.
        self._texture = cv2.GaussianBlur(
            rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), max(3.0, width / 15)
        )
        self._texture = self._texture * np.float32(6.0 / max(1e-3, float(self._texture.std())))

    def _visible_darkening(self, picture: np.ndarray) -> float:
        """The underexposure's gain (or gamma), eased where it would leave the picture black (see
        UNDEREXPOSED_LIT_SHARE): judged once, on the first faulty frame's clean picture."""
        p = self.s.params
        luma = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
        lit = max(float(np.percentile(luma, 100.0 * (1.0 - UNDEREXPOSED_LIT_SHARE))), 1.0)
        if self.s.family == "gamma":
            if lit <= UNDEREXPOSED_LIT_LEVEL:
                return 1.0
            # 255 (lit/255)^gamma >= the level  <=>  gamma <= log(level/255) / log(lit/255)
            most = float(np.log(UNDEREXPOSED_LIT_LEVEL / 255.0) / np.log(min(lit, 254.0) / 255.0))
            return min(float(p["gamma"]), max(1.0, most))
        return min(1.0, max(float(p["gain"]), (UNDEREXPOSED_LIT_LEVEL + p.get("crush", 0.0)) / lit))

    def envelope(self, t: float) -> float:
        s = self.s
        if not (s.start <= t < s.end):
            return 0.0
        if s.ramp_s <= 0:
            return 1.0
        return min(1.0, (t - s.start) / s.ramp_s)

    def apply(self, img: np.ndarray, pre_noise: np.ndarray, t: float, add_noise, sensor_sigma: float) -> np.ndarray:
        """``img``: the clean picture with sensor noise; ``pre_noise``: the same before noise."""
        s, p, e = self.s, self.s.params, self.envelope(t)
        if e <= 0:
            self.frozen = None
            return img
        w, h = self.w, self.h
        f = s.fault
        if f == "black":
            if s.family == "crushed":
                dark = _gain(pre_noise, p["gain"], p["level"] * 0.3)
            else:
                dark = np.full_like(img, int(p["level"]))
            dark = add_noise(dark, p["noise"]) if p["noise"] > 0 else dark
            return _blend(img, dark, e)
        if f == "freeze":
            if self.frozen is None:
                self.frozen = (pre_noise if s.family == "noisy" else img).copy()
            return add_noise(self.frozen, p["noise"]) if s.family == "noisy" else self.frozen
        if f == "blur":
            if s.family == "lens":
                r = max(1, int(p["radius"] * w / 1280 * e))
                k = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
                cv2.circle(k, (r, r), r, 1.0, -1)
                return cv2.filter2D(img, -1, k / k.sum())
            sigma = p["sigma"] * w / 1280 * e
            return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.3 else img
        if f == "noise":
            if s.family == "impulse":
                out = img.copy()
                m = self.rng.uniform(0, 1, (h, w)) < p["fraction"] * e
                out[m] = self.rng.choice([0, 255], size=(int(m.sum()), 1)).astype(np.uint8)
                return out
            sigma = p["sigma"] * e
            if s.family == "colour":
                n = self.rng.normal(0, sigma, img.shape).astype(np.float32)
                return np.clip(img + n, 0, 255).astype(np.uint8)
            if s.family == "shot":
                level = img.astype(np.float32)
                n = self.rng.standard_normal(img.shape[:2], dtype=np.float32)[..., None]
                n = n * sigma * np.sqrt(np.maximum(level, 4.0) / 128.0)
                return np.clip(level + n, 0, 255).astype(np.uint8)
            return add_noise(img, sigma, mono=True)
        if f == "overexposed":
            if s.family == "washout":
                return _blend(img, _gain(img, p["gain"], p["offset"]), e)
            if s.family == "gamma":
                return _blend(img, _gain(_gamma(img, p["gamma"]), p["gain"]), e)
            return _gain(img, 1 + (p["gain"] - 1) * e)
        if f == "underexposed":
            if self._darkening is None:
                self._darkening = self._visible_darkening(pre_noise)
            if s.family == "gamma":
                return _blend(img, _gamma(img, self._darkening), e)
            if s.family == "lowlight":
                dark = np.clip(np.rint(_gain(pre_noise, self._darkening) - float(p["crush"])), 0, 255).astype(np.uint8)
                return add_noise(dark, max(sensor_sigma, p["noise"]))
            return _gain(img, 1 + (self._darkening - 1) * e)
        if f == "blocking":
            return _blend(img, self._blocky(img), e)
        if f == "no_signal":
            return self._no_signal(t)
        if f == "obstruction":
            # The cover is in front of the lens: the sensor still adds its noise on top.
            return add_noise(self._obstruct(pre_noise, t, e), sensor_sigma)
        raise ValueError(f"unknown fault {f!r}")

    def _blocky(self, img: np.ndarray) -> np.ndarray:
        p, fam, (h, w) = self.s.params, self.s.family, img.shape[:2]
        if fam == "jpeg":
            return jpeg_roundtrip(img, p["quality"])
        if fam == "macroblock":
            small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            return cv2.resize(jpeg_roundtrip(small, p["quality"]), (w, h), interpolation=cv2.INTER_NEAREST)
        block = max(2, round(p["block"] * (w / 1280 if fam == "mosaic" else 1)))
        ox, oy = p["offset"]
        padded = cv2.copyMakeBorder(img, oy, block, ox, block, cv2.BORDER_REFLECT)
        ph, pw = padded.shape[:2]
        small = cv2.resize(padded, (max(1, pw // block), max(1, ph // block)), interpolation=cv2.INTER_AREA)
        big = cv2.resize(small, (pw // block * block, ph // block * block), interpolation=cv2.INTER_NEAREST)
        return (
            np.ascontiguousarray(big[oy : oy + h, ox : ox + w])
            if big.shape[0] >= oy + h and big.shape[1] >= ox + w
            else cv2.resize(big, (w, h), interpolation=cv2.INTER_NEAREST)
        )

    def _no_signal(self, t: float) -> np.ndarray:
        p, fam, w, h = self.s.params, self.s.family, self.w, self.h
        font = cv2.FONT_HERSHEY_SIMPLEX
        if fam == "bars":
            img = colour_bars(w, h)
            if p["variant"] == 1:
                img = cv2.convertScaleAbs(img, alpha=255 / 191)
            if p["variant"] == 2:
                scale = h / 400
                cv2.putText(img, p["text"], (w // 3, h // 2), font, scale, (255, 255, 255), max(1, int(scale * 2)))
            return img
        if fam == "moving_logo":
            img = np.zeros((h, w, 3), np.uint8)
            scale = h / 700
            (tw, th), _ = cv2.getTextSize(p["text"], font, scale, 2)
            # Bounces around the screen like a DVD player's idle logo.
            x = int(abs(((t * 0.11 * w) % (2 * (w - tw))) - (w - tw)))
            y = th + int(abs(((t * 0.08 * h) % (2 * (h - 2 * th))) - (h - 2 * th)))
            cv2.rectangle(img, (x - 4, y - th - 4), (x + tw + 4, y + 6), (200, 120, 30), -1)
            cv2.putText(img, p["text"], (x, y), font, scale, (255, 255, 255), 2, cv2.LINE_AA)
            return img
        img = np.empty((h, w, 3), np.uint8)
        img[:] = p["colour"]
        scale = h / (350 if fam == "flat_card" else 600)
        (tw, th), _ = cv2.getTextSize(p["text"], font, scale, 2)
        cv2.putText(img, p["text"], ((w - tw) // 2, (h + th) // 2), font, scale, (235, 235, 235), 2, cv2.LINE_AA)
        if fam == "vendor_card":
            cv2.putText(img, "CH-03  Entrance", (w // 20, h // 10), font, scale * 0.8, (200, 200, 200), 1, cv2.LINE_AA)
            cv2.rectangle(img, (w // 2 - w // 12, h // 4), (w // 2 + w // 12, h // 4 + h // 8), (180, 180, 180), 2)
        return img

    def _obstruct(self, img: np.ndarray, t: float, e: float) -> np.ndarray:
        p, fam, w, h = self.s.params, self.s.family, self.w, self.h
        # Slides in/out over 0.5 s at the segment's ends.
        slide = min(1.0, (t - self.s.start) / 0.5, (self.s.end - t) / 0.5)
        if self._field is not None:
            # Spray paint builds up blotch by blotch; it is wiped off at the end.
            cov = p["coverage"] * min(1.0, (t - self.s.start) / p["grow_s"]) * max(0.0, min(1.0, slide * 2))
            thr = np.quantile(self._field, 1 - cov) if cov < 1 else -1.0
            mask = cv2.GaussianBlur((self._field >= thr).astype(np.float32), (0, 0), max(2.0, w / 50)) * e
        elif self.mask is not None:
            mask = self.mask * max(0.0, slide) * e
        else:
            mask = _soft_mask(h, w, self.rng, p["coverage"] * max(0.0, slide), "slide", t) * e
        cover = np.full(img.shape, p["level"], np.float32)
        cover += self._texture[..., None]
        if fam == "hand":
            cover *= np.array([0.75, 0.9, 1.15], np.float32)
        m = mask[..., None]
        return np.clip(img.astype(np.float32) * (1 - m) + cover * m, 0, 255).astype(np.uint8)


def apply_event(img: np.ndarray, ev: Event, t: float) -> np.ndarray:
    """A clean event on the picture at time t (inside the event's span)."""
    u = (t - ev.start) / max(ev.length, 1e-6)
    h, w = img.shape[:2]
    p = ev.params
    if ev.kind == "fade":
        g = 1.0 - p["depth"] * (1.0 - abs(1.0 - 2.0 * u))
        return _gain(img, g)
    if ev.kind == "flash":
        return _blend(img, np.full_like(img, 255), p["strength"])
    if ev.kind == "whip":
        shift = int(p["direction"] * w * 0.6 * np.sin(np.pi * u))
        m = np.array([[1, 0, shift], [0, 1, 0]], np.float32)
        moved = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        k = max(3, int(w * 0.08 * np.sin(np.pi * u)) | 1)
        return cv2.blur(moved, (k, 1))
    if ev.kind == "ir_switch":
        mono = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        return _gain(mono, p["gain"])
    if ev.kind == "exposure_hunt":
        return _gain(img, 1.0 + p["amplitude"] * np.sin(2 * np.pi * u * 2))
    if ev.kind == "slate":
        r = np.random.default_rng(p["seed"])
        c0, c1 = r.integers(20, 200, 3), r.integers(20, 200, 3)
        ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
        slate = (c0 * (1 - ramp) + c1 * ramp).astype(np.float32) * np.ones((h, 1, 1), np.float32)
        slate = slate.astype(np.uint8)
        font = cv2.FONT_HERSHEY_DUPLEX
        scale = h / 300
        cv2.putText(slate, "NEXT: EVENING NEWS", (w // 10, h // 2), font, scale, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(
            slate, "19:00", (w // 10, h // 2 + int(40 * scale)), font, scale * 0.8, (230, 230, 230), 2, cv2.LINE_AA
        )
        return slate
    raise ValueError(f"unknown event {ev.kind!r}")
