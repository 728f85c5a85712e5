"""Config loading: typed models, layered defaults, and errors that name the key and the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from monitor.config import load_config, parse_config
from monitor.errors import ConfigError
from tests.conftest import ROOT, VQMON


def err(raw) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    return str(exc.value)


def test_shipped_configs_are_valid():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.streams, f"{path.name} has no streams"


def test_layering_profile_then_defaults_then_stream():
    cfg = parse_config(
        {
            "defaults": {"profile": "cctv", "checks": {"black": {"min_fraction": 0.9}}},
            "streams": [
                {"name": "a", "url": "rtsp://h/a"},
                {"name": "b", "url": "rtsp://h/b", "profile": "broadcast", "sample": {"every_n": 3}},
            ],
        }
    )
    a, b = cfg.streams
    assert a.profile == "cctv" and a.sample.every_s == 0.5 and a.sample.every_n is None
    assert a.checks.black.min_fraction == 0.9  # the defaults section, where the profile says nothing
    assert a.checks.black.raise_after_s == 3.0  # from the cctv preset
    assert b.profile == "broadcast" and b.sample.every_n == 3
    assert b.capture.stall_timeout_s == 3  # broadcast preset


def test_profile_overrides_defaults_and_stream_overrides_both():
    cfg = parse_config(
        {
            "defaults": {"checks": {"black": {"raise_after_s": 9.0}}},
            "streams": [
                {"name": "a", "url": "x", "profile": "cctv"},
                {"name": "b", "url": "y"},
                {"name": "c", "url": "z", "profile": "cctv", "checks": {"black": {"raise_after_s": 0.5}}},
            ],
        }
    )
    assert [s.checks.black.raise_after_s for s in cfg.streams] == [3.0, 9.0, 0.5]


def test_sample_section_replaces_rather_than_merges():
    cfg = parse_config(
        {
            "defaults": {"sample": {"every_n": 5}},
            "streams": [{"name": "a", "url": "x", "sample": {"every_s": 2}}],
        }
    )
    assert cfg.streams[0].sample.every_s == 2 and cfg.streams[0].sample.every_n is None


def test_bad_value_names_path_and_bound():
    streams = [
        {"name": "a", "url": "x"},
        {"name": "b", "url": "y"},
        {"name": "c", "url": "z", "sample": {"every_n": 0}},
    ]
    assert err({"streams": streams}) == "streams[2].sample.every_n: must be ≥ 1 (got 0)"
    streams[2] = {"name": "c", "url": "z", "sample": {"every_n": 10**12}}  # a typo: one frame checked, ever
    assert err({"streams": streams}).startswith("streams[2].sample.every_n: must be ≤ 100000")
    streams[2] = {"name": "c", "url": "z", "sample": {"every_s": 86400}}
    assert err({"streams": streams}).startswith("streams[2].sample.every_s: must be ≤ 3600")
    streams[2] = {"name": "c", "url": "z", "scoring": {"min_quality": 1.5}}
    assert err({"streams": streams}) == "streams[2].scoring.min_quality: must be ≤ 1.0 (got 1.5)"
    # the tile grid: one message, not one per form the setting may take
    for tiles in ("big", [9, 1], [3]):
        assert err({"scoring": {"tiles": tiles}}) == (
            f"scoring.tiles: must be auto, off, or [columns, rows] with 1-8 each (got {tiles!r})"
        )
    assert parse_config({"scoring": {"tiles": [3, 2]}}).scoring.tiles == (3, 2)
    assert parse_config({}).scoring.tiles == "auto" and parse_config({}).scoring.min_tile_quality is None


def test_stream_scoring_overrides_the_global_scorer_settings():
    cfg = parse_config(
        {
            "scoring": {"every_s": 2.0, "min_quality": 0.3},
            "defaults": {"scoring": {"min_quality": 0.2}},
            "streams": [
                {"name": "a", "url": "x"},
                {"name": "b", "url": "y", "scoring": {"every_s": 0.5}},
                {"name": "c", "url": "z", "scoring": {"enabled": False}},
            ],
        }
    )
    a, b, c = (cfg.scoring.for_stream(s.scoring) for s in cfg.streams)
    assert (a.every_s, a.min_quality) == (2.0, 0.2)  # defaults apply to every stream
    assert (b.every_s, b.min_quality) == (0.5, 0.2)
    assert c is None and cfg.scoring.min_quality == 0.3


def test_unknown_key_suggests_the_right_one():
    msg = err({"streams": [{"name": "a", "url": "x", "captur": {}}]})
    assert msg.startswith("streams[0].captur: unknown key (did you mean 'capture'?")
    assert "unknown key" in err({"sinks": {"jsonl": {"file": "x"}}})
    assert err({"streams": [{"name": "a", "url": "x", "checks": {"blak": {}}}]}).startswith(
        "streams[0].checks.blak: unknown key (did you mean 'black'?"
    )


def test_wrong_types_and_choices():
    assert err({"defaults": {"capture": {"rtsp_transport": "sctp"}}}) == (
        "defaults.capture.rtsp_transport: must be 'tcp' or 'udp' (got 'sctp')"
    )
    assert "streams[0].capture.stall_timeout_s" in err(
        {"streams": [{"name": "a", "url": "x", "capture": {"stall_timeout_s": "soon"}}]}
    )
    assert err({"streams": [{"url": "x"}]}) == "streams[0].name: required key is missing"
    assert "streams[0].name" in err({"streams": [{"name": "a b", "url": "x"}]})
    assert "choose one sampling mode" in err(
        {"streams": [{"name": "a", "url": "x", "sample": {"every_n": 2, "every_s": 1}}]}
    )
    assert "unknown profile 'tv'" in err({"streams": [{"name": "a", "url": "x", "profile": "tv"}]})
    assert "already used by streams[0]" in err({"streams": [{"name": "a", "url": "x"}, {"name": "a", "url": "y"}]})
    assert "top level must be a mapping" in err(["a"])


def test_env_substitution(monkeypatch):
    monkeypatch.setenv("CAM_PASS", "s3cret")
    cfg = parse_config({"streams": [{"name": "a", "url": "rtsp://admin:${CAM_PASS}@cam/x"}]})
    assert cfg.streams[0].url == "rtsp://admin:s3cret@cam/x"
    cfg = parse_config({"streams": [{"name": "a", "url": "${CAM_URL:-rtsp://fallback/x}"}]})
    assert cfg.streams[0].url == "rtsp://fallback/x"
    monkeypatch.delenv("CAM_PASS")
    assert err({"streams": [{"name": "a", "url": "rtsp://admin:${CAM_PASS}@cam/x"}]}) == (
        "streams[0].url: environment variable CAM_PASS is not set (export it, or write ${CAM_PASS:-default})"
    )


def test_malformed_yaml_names_line(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("streams:\n  - name: a\n    url: [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "malformed YAML" in str(exc.value) and "line " in str(exc.value)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("streams:\n  - name: a\n    url: [unclosed\n", "malformed YAML"),
        ("streams:\n  - name: a\n    url: x.mp4\n    colour: red\n", "streams[0].colour: unknown key"),
        ("streams:\n  - name: a\n    url: ftp://cam/x\n", "unknown URL scheme 'ftp'"),
    ],
)
def test_check_config_cli_one_line_errors(tmp_path: Path, text: str, expect: str):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    r = subprocess.run([*VQMON, "check-config", str(p)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert expect in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_check_config_warns_of_a_gstreamer_pipeline_this_opencv_cannot_run(tmp_path: Path):
    import re

    import cv2

    p = tmp_path / "c.yaml"
    p.write_text(
        'streams:\n  - {name: jetson, url: "nvarguscamerasrc ! nvvidconv ! appsink"}\n  - {name: b, url: b.mp4}\n'
    )
    r = subprocess.run([*VQMON, "check-config", str(p)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "OK, 2 stream(s)" in r.stdout, r.stderr
    built = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
    if built and built.group(1).upper() == "YES":  # a system OpenCV with GStreamer: nothing to say
        assert r.stderr == ""
    else:  # pip's wheel (this box): said before the daemon fails on it
        assert len(r.stderr.strip().splitlines()) == 1 and "streams[0].url: a GStreamer pipeline" in r.stderr


def test_a_directory_given_as_a_video_file_is_named_as_such(tmp_path: Path):
    folder = tmp_path / "recordings.mp4"
    folder.mkdir()
    p = tmp_path / "c.yaml"
    p.write_text(f"streams:\n  - {{name: a, url: {folder}}}\n")
    r = subprocess.run([*VQMON, "check-config", str(p)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"streams[0].url: {folder}: a directory, not a video file" in r.stderr
    from monitor.capture import open_decoder
    from monitor.config import CaptureConfig
    from monitor.errors import SourceError

    for decoder in ("pyav", "opencv"):  # and the daemon says the same, not "file not found"
        with pytest.raises(SourceError, match="a directory, not a video file"):
            open_decoder(str(folder), "file", CaptureConfig(decoder=decoder), False)


def test_check_config_cli_ok_masks_credentials():
    r = subprocess.run([*VQMON, "check-config", "configs/demo.yaml"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "OK, 2 stream(s)" in r.stdout
    assert "secret" not in r.stdout and "demo:***@" in r.stdout


def test_the_schema_knows_every_check_whichever_module_is_imported_first():
    """Importing one check module before the config must not freeze a schema that lacks it."""
    import sys

    from monitor.checks import all_checks

    names = sorted(all_checks())
    script = (
        "import importlib, sys\n"
        "importlib.import_module('monitor.checks.' + sys.argv[1])\n"
        "from monitor.config import checks_config_model\n"
        "print(' '.join(sorted(checks_config_model().model_fields)))\n"
    )
    for name in names:
        r = subprocess.run([sys.executable, "-c", script, name], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == names, name


def test_the_renamed_quality_section_says_its_new_name():
    """`quality:` (BRISQUE/NIQE) became `iqa:`, since `quality` also names the CLIP-IQA fault."""
    assert "renamed to iqa" in err({"quality": {"brisque": False}})
    assert parse_config({"iqa": {"brisque": False}}).iqa.brisque is False
