"""Masks: parts of the picture every check ignores, the operator's fix for a false alarm (or,
here, for a missed one): a frozen camera whose flickering LED sign keeps a quarter of the
picture changing."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.analyze import analyze_files
from monitor.config import parse_config
from monitor.demo import SceneRenderer, encode_frames
from monitor.errors import ConfigError


@pytest.fixture(scope="module")
def frozen_with_led_sign(tmp_path_factory):
    still = SceneRenderer(640, 360, 25, seed=3).render(1.0)
    rng = np.random.default_rng(0)

    def frames():
        for _ in range(25 * 8):
            f = still.copy()
            f[:150, 400:] = rng.integers(0, 255, (150, 240, 3), dtype=np.uint8)  # the sign, top right
            yield f

    return encode_frames(tmp_path_factory.mktemp("masks") / "led.mp4", frames(), width=640, height=360, fps=25)


@pytest.mark.parametrize(
    "masks",
    [
        [{"name": "LED sign", "rect": [0.6, 0.0, 0.4, 0.45]}],
        [{"polygon": [[0.6, 0.0], [1.0, 0.0], [1.0, 0.45], [0.6, 0.45]]}],
    ],
)
def test_a_mask_hides_what_keeps_a_frozen_picture_moving(frozen_with_led_sign, masks):
    plain = analyze_files([str(frozen_with_led_sign)], parse_config({}))
    assert [e.fault for e in plain.events] == []  # the sign's flicker hides the freeze
    masked = analyze_files([str(frozen_with_led_sign)], parse_config({"defaults": {"masks": masks}}))
    assert [(e.fault, e.event) for e in masked.events] == [("freeze", "raise")]


def test_mask_config_errors_are_one_line():
    def err(masks):
        with pytest.raises(ConfigError) as e:
            parse_config({"streams": [{"name": "a", "url": "a.mp4", "masks": masks}]})
        return str(e.value)

    assert "give either rect: [x, y, width, height] or polygon" in err([{"name": "x"}])
    assert "polygon: needs three points or more" in err([{"polygon": [[0, 0], [1, 1]]}])
    assert "streams[0].masks[0].rect[2]: must be ≤ 1.0 (got 2)" in err([{"rect": [0, 0, 2, 1]}])
