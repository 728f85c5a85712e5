"""On-screen graphics that cameras and playout add on top of the picture: a CCTV clock, a
channel logo, a lower-third caption, a news ticker. They stay live while the picture under them
freezes or goes black, which is what makes those faults hard to see by frame difference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Corner = Literal["tl", "tr", "bl", "br"]


@dataclass(frozen=True)
class Overlay:
    kind: Literal["clock", "logo", "caption", "ticker"]
    corner: Corner = "tl"
    scale: float = 1.0  # text size relative to the frame height
    boxed: bool = False  # text on a dark box (many NVRs) rather than outlined
    text: str = "CAM 07"
    start: float = 0.0  # caption: shown in [start, end)
    end: float = 1e9


def _anchor(corner: Corner, w: int, h: int, tw: int, th: int, margin: int) -> tuple[int, int]:
    x = margin if corner in ("tl", "bl") else w - tw - margin
    y = margin + th if corner in ("tl", "tr") else h - margin
    return x, y


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, boxed: bool) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = org
    if boxed:
        cv2.rectangle(img, (x - 3, y - th - 4), (x + tw + 3, y + base + 2), (20, 20, 20), -1)
    else:
        cv2.putText(img, text, org, font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, font, scale, (240, 240, 240), thick, cv2.LINE_AA)


def draw(img: np.ndarray, ov: Overlay, t: float) -> None:
    """Draw ``ov`` as it looks at time ``t`` (in place)."""
    h, w = img.shape[:2]
    scale = ov.scale * h / 600
    margin = max(4, h // 40)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if ov.kind == "clock":
        sec = int(t) + 3 * 3600 + 17 * 60
        text = f"2026-11-25 {sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}  {ov.text}"
        (tw, th), _ = cv2.getTextSize(text, font, scale, max(1, round(scale * 2)))
        _text(img, text, _anchor(ov.corner, w, h, tw, th, margin), scale, ov.boxed)
    elif ov.kind == "logo":
        (tw, th), _ = cv2.getTextSize(ov.text, font, scale * 1.3, max(1, round(scale * 3)))
        x, y = _anchor(ov.corner, w, h, tw, th, margin * 2)
        roi = img[max(0, y - th - 6) : y + 6, max(0, x - 6) : x + tw + 6]
        roi[:] = (roi.astype(np.float32) * 0.55 + 80).astype(np.uint8)  # a translucent plate
        cv2.putText(img, ov.text, (x, y), font, scale * 1.3, (250, 250, 250), max(1, round(scale * 3)), cv2.LINE_AA)
    elif ov.kind == "caption":
        if ov.start <= t < ov.end:
            top = int(h * 0.78)
            bar = img[top : int(h * 0.9), int(w * 0.05) : int(w * 0.7)]
            bar[:] = (bar.astype(np.float32) * 0.25 + (90, 40, 10)).astype(np.uint8)
            _text(img, ov.text, (int(w * 0.07), int(h * 0.865)), scale * 1.1, False)
    elif ov.kind == "ticker":
        top = int(h * 0.92)
        img[top:] = (img[top:].astype(np.float32) * 0.2 + (120, 30, 0)).astype(np.uint8)
        msg = f"{ov.text}  +++  markets close higher  +++  weather: rain later  +++  "
        (tw, _th), _ = cv2.getTextSize(msg, font, scale, max(1, round(scale * 2)))
        x = w - int((t * w * 0.12) % (tw + w))
        cv2.putText(img, msg, (x, h - margin // 2 - 2), font, scale, (255, 255, 255), max(1, round(scale * 2)))
