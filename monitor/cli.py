"""The `vqmon` command. Every failure an operator can cause ends in one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.config import Config, load_config, parse_config, profiles
from monitor.errors import ConfigError, SourceError, VqmonError
from monitor.scoring.clip_iqa import Device, Precision

log = logging.getLogger("monitor")

EXIT_USER_ERROR = 2


class _JsonLines(logging.Formatter):
    """One JSON object per record, for log shippers (log_format: json)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _setup_logging(level: str, daemon: bool, json_lines: bool = False) -> None:
    # journald stamps each line itself; the daemon's own time stamp is for a plain terminal or file.
    fmt = "%(asctime)s %(levelname)-7s %(name)s: %(message)s" if daemon else "vqmon: %(levelname)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    if json_lines:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_JsonLines())
    if logging.getLogger().level < logging.WARNING:
        # Libraries (open_clip, onnxscript, the ORT quantiser) log chatter at INFO, some on the
        # root logger; below WARNING only our own records are worth an operator's attention.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_ours_or_warning)


def _ours_or_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] in ("monitor", "exporters")


def _config(path: str | None) -> Config:
    return load_config(path) if path else parse_config({})


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.daemon import run_daemon

    cfg = load_config(args.config)
    _setup_logging(args.log_level or cfg.log_level, daemon=True, json_lines=cfg.log_format == "json")
    shard = None
    if args.shard:
        from monitor.shard import parse_shard

        shard = parse_shard(args.shard)
    return run_daemon(cfg, config_path=args.config, shard=shard)


def cmd_analyze(args: argparse.Namespace) -> int:
    from monitor.analyze import analyze_files, format_loudness, format_table

    cfg = _config(args.config)
    _setup_logging(args.log_level or "warning", daemon=False)
    jsonl = sys.stdout if args.output == "jsonl" else None
    result = analyze_files(
        args.files,
        cfg,
        profile=args.profile,
        jsonl_out=jsonl,
        progress=sys.stderr.isatty() and not args.quiet,
    )
    if args.output == "table":
        print(format_table(result.events))
    loudness = format_loudness(result.stats)
    if loudness and not args.quiet:
        # Beside the alerts on stdout in table mode; on stderr with JSONL, which holds only events.
        print(loudness, file=sys.stdout if args.output == "table" else sys.stderr)
    for w in result.warnings:
        print(f"vqmon: warning: {w}", file=sys.stderr)
    for e in result.errors:
        print(f"vqmon: error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR if result.errors else 0


def _scoring_problems(cfg: Config) -> tuple[list[str], bool]:
    """What stops the CLIP scorer from starting as configured; and whether its weights are random."""
    from monitor.scoring.model_dir import ModelError, has_text_encoder, verify_model_dir
    from monitor.scoring.prompts import PromptError, PromptSet, load_prompt_set

    sc, problems = cfg.scoring, []
    assert sc.model_dir is not None
    try:
        manifest = verify_model_dir(sc.model_dir, sc.precision)
    except ModelError as exc:
        return [f"scoring.model_dir: {exc}"], False
    if sc.runtime == "torch":
        from monitor.scoring.torch_backend import check_program

        try:
            check_program(Path(sc.model_dir), manifest)
        except VqmonError as exc:
            problems.append(f"scoring.runtime torch: {exc}")
    elif sc.device in ("cuda", "tensorrt"):
        import onnxruntime

        from monitor.scoring.clip_iqa import DeviceError, choose_providers

        try:
            choose_providers(sc.device, onnxruntime.get_available_providers())
        except DeviceError as exc:
            problems.append(str(exc))
    if sc.prompts:
        try:
            wanted = load_prompt_set(sc.prompts)
            if wanted.digest != PromptSet.from_manifest(manifest).digest and not has_text_encoder(manifest):
                problems.append(
                    f"scoring.prompts: {sc.model_dir} has no text encoder to embed {sc.prompts}; "
                    "re-export the model, or drop scoring.prompts"
                )
        except PromptError as exc:
            problems.append(f"scoring.prompts: {exc}")
    return problems, bool(manifest.get("random_init"))


def cmd_check_config(args: argparse.Namespace) -> int:
    from monitor.capture.urls import classify, file_path, file_problem, mask_credentials
    from monitor.checks import all_checks

    cfg = load_config(args.config)
    problems = []
    warnings = []
    pipelines = []  # streams whose url is a GStreamer pipeline
    for i, s in enumerate(cfg.streams):
        try:
            kind = classify(s.url)
        except SourceError as exc:
            problems.append(f"streams[{i}].url: {exc}")
            continue
        if kind == "gstreamer":
            pipelines.append(i)
        if s.audio.enabled is True and (kind == "gstreamer" or s.capture.decoder == "opencv"):
            warnings.append(
                f"streams[{i}].audio.enabled: true, but the OpenCV/GStreamer decoder reads no sound: every "
                "stretch will be audio_missing; use capture.decoder: pyav, or audio.enabled: false"
            )
        # A missing file may appear later (a recording still being copied); a directory never plays.
        if kind == "file" and os.path.isdir(file_path(s.url)):
            problems.append(f"streams[{i}].url: {file_problem(file_path(s.url))}")
    if pipelines:
        import cv2

        gst = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
        if not gst or gst.group(1).upper() != "YES":
            warnings += [
                f"streams[{i}].url: a GStreamer pipeline, but this OpenCV was built without GStreamer "
                "(pip's opencv wheels are): it will fail at run time; use the system OpenCV "
                "(JetPack's on a Jetson) in the daemon's environment"
                for i in pipelines
            ]
    random_weights = False
    if cfg.scoring.model_dir:
        scoring_problems, random_weights = _scoring_problems(cfg)
        problems += scoring_problems
    for w in warnings:
        print(f"vqmon: warning: {args.config}: {w}", file=sys.stderr)
    for p in problems:
        print(f"vqmon: error: {args.config}: {p}", file=sys.stderr)
    if problems:
        return EXIT_USER_ERROR
    print(f"{args.config}: OK, {len(cfg.streams)} stream(s)")
    if random_weights:
        print(
            f"  scoring.model_dir {cfg.scoring.model_dir}: random weights (random_init: true), "
            "its scores are reported but mean nothing and raise no clip_quality alert"
        )
    for s in cfg.streams:
        smp = s.sample
        mode = f"every_n={smp.every_n}" if smp.every_n else f"every_s={smp.every_s}" if smp.every_s else "keyframes"
        audio_off = s.audio.enabled is False
        enabled = ",".join(
            n for n, c in s.checks if c.enabled and not (audio_off and all_checks()[n].domain == "audio")
        )
        state = "" if s.enabled else " (disabled)"
        clip = ""
        if cfg.scoring.model_dir:
            own = cfg.scoring.for_stream(s.scoring)
            clip = " clip=off" if own is None else f" clip=every_s={own.every_s},min_quality={own.min_quality}"
        print(f"  {s.name}{state}: {mask_credentials(s.url)} profile={s.profile} sample={mode}{clip} checks={enabled}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.bench import bench_checks, bench_clip, bench_decode

    cfg = _config(args.config)
    _setup_logging(args.log_level or "warning", daemon=False)
    if args.what == "mqtt":
        from benchmarks.bench import bench_mqtt

        mqtt = bench_mqtt()
        print(json.dumps(mqtt.as_dict(), indent=1) if args.json else mqtt.report())
        return 0
    if args.what == "pipeline":
        from benchmarks.pipeline_bench import bench_pipeline, parse_sample

        try:
            counts = [int(x) for x in args.streams.split(",")]
            sample = parse_sample(args.sample)
        except ValueError as exc:
            raise VqmonError(f"{exc} (--streams 8,16,24 --sample every_s=1)") from None
        if args.clip:
            from monitor.analyze import preflight

            problem = preflight(args.clip, cfg.stream_settings())
            if problem:
                raise SourceError(problem)
        fleet = bench_pipeline(cfg, counts, sample, args.clip, window_s=args.window_s, encoding=args.encoding)
        print(json.dumps(fleet.as_dict(), indent=1) if args.json else fleet.report())
        return 0
    if args.what == "scorer":
        from benchmarks.bench import bench_scorer, bench_torch_backend

        if args.device:  # the torch backend (GPU boxes), against its bare model
            torch_bench = bench_torch_backend(cfg.state_dir, arch=args.arch, device=args.device)
            print(json.dumps(torch_bench.as_dict(), indent=1) if args.json else torch_bench.report())
            return 0
        scorer = bench_scorer(cfg.state_dir, arch=args.arch, rounds=args.repeats)
        print(json.dumps(scorer.as_dict(), indent=1) if args.json else scorer.report())
        return 0
    from monitor.analyze import preflight

    path = args.file or str(bench_clip(cfg.state_dir))
    problem = preflight(path, cfg.stream_settings())
    if problem:
        raise SourceError(problem)
    result = bench_decode(path, cfg, repeats=args.repeats) if args.what == "decode" else bench_checks(path, cfg)
    print(json.dumps(result.as_dict(), indent=1) if args.json else result.report())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.clips_dir == "iqa":
        return _eval_iqa(args)
    cfg = _config(args.config)
    _setup_logging(args.log_level or "warning", daemon=False)
    if args.clips_dir == "audio" and args.labels is None:
        return _eval_audio(args, cfg)
    if args.clips_dir == "moved" and args.labels is None:
        return _eval_moved(args, cfg)
    if args.labels is None and args.clips_dir is None:
        return _eval_suite(args, cfg)
    if args.labels is None or args.clips_dir is None:
        raise VqmonError("give both CLIPS_DIR and --labels, or neither for the train / val / devset report")
    folder = Path(args.clips_dir)
    if not folder.is_dir():
        raise VqmonError(f"{folder}: not a folder of clips (give the folder the labels' file names are in)")
    report, ok = _eval_set(args, cfg, folder, Path(args.labels), args.alerts_out)
    print(json.dumps(report.as_dict(), indent=1) if args.json else report.table())
    overall = report.overall()
    if args.min_f1 is not None and overall["f1"] < args.min_f1:
        print(f"vqmon: micro-F1 {overall['f1']:.3f} is below --min-f1 {args.min_f1}", file=sys.stderr)
        return 1
    return 0 if ok else EXIT_USER_ERROR


def _eval_iqa(args: argparse.Namespace) -> int:
    """`vqmon eval iqa`: the scorers against people's opinion scores (--mos), or on the built-in
    synthetic ladders of graded distortions."""
    from monitor.iqa import mos_eval

    _setup_logging(args.log_level or "warning", daemon=False)
    default, random_init = "brisque,niqe", False
    if args.model:
        from monitor.scoring.model_dir import load_manifest

        manifest = load_manifest(args.model)
        random_init = bool(manifest.get("random_init"))
        from monitor.scoring.prompts import PromptSet

        learned = PromptSet.from_manifest(manifest).learned
        default += ",clip_pair,clip" + (",clip_learned" if learned else "")
    names = [n.strip() for n in (args.scorers or default).split(",")]
    scorers = mos_eval.scorer_functions(names, args.model)
    if args.mos is None:  # the built-in synthetic benchmark
        from monitor.iqa import ladder

        lower = frozenset(mos_eval.LOWER_IS_BETTER)
        photos = ladder.photographs("val")
        val = ladder.ladder_scores(scorers, photos, lower)
        per_type = {name: ladder.srcc_per_distortion(v) for name, v in val.items()}
        weights = None
        if len(scorers) > 1:  # the ensemble: fitted on the train photographs, reported on these
            train = ladder.ladder_scores(scorers, ladder.photographs("train"), lower)
            per_type["ensemble"], weights = ladder.ensemble_srcc(train, val)
        if args.json:
            out = {"random_init": random_init, "photographs": len(photos), "ensemble_weights": weights, **per_type}
            print(json.dumps(out, indent=1))
        else:
            print(ladder.table(per_type, len(photos), random_init))
            if weights:
                print(f"ensemble: fitted on the train photographs' ladders; weights {weights}")
        return 0
    results, weights = mos_eval.evaluate(mos_eval.load_mos(args.mos, args.images), scorers)
    if args.json:
        out = {"random_init": random_init, "ensemble_weights": weights, **{k: v.as_dict() for k, v in results.items()}}
        print(json.dumps(out, indent=1))
    else:
        print(mos_eval.table(results, random_init))
        if weights:
            print(f"ensemble: 5-fold out-of-fold predictions; weights on all pictures {weights}")
    return 0


def _eval_set(args: argparse.Namespace, cfg: Config, folder: Any, labels: Any, alerts_out: str | None):
    from pathlib import Path

    from monitor.analyze import analyze_files
    from monitor.evaluate import load_labels, score

    clips = load_labels(labels)
    paths = [str(Path(folder) / c.file) for c in clips]
    result = analyze_files(paths, cfg, profile=args.profile, progress=sys.stderr.isatty())
    for e in result.errors:
        print(f"vqmon: error: {e}", file=sys.stderr)
    events = [e.to_dict() for e in result.events]
    if alerts_out:
        Path(alerts_out).write_text("".join(json.dumps(e) + "\n" for e in events))
    return score(clips, events, tol=args.tol), not result.errors


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _eval_suite(args: argparse.Namespace, cfg: Config) -> int:
    """Train and val (generated, cached under --corpus) and the untouched dev set, one table each."""
    from pathlib import Path

    from monitor.demo.corpus import write_corpus

    sets = []
    for split in ("train", "val"):
        labels = write_corpus(args.corpus, split, progress=_progress(split))
        sets.append((split, labels.parent, labels))
    devset = Path(args.devset)
    if (devset / "labels.json").is_file():
        sets.append(("devset (untouched)", devset, devset / "labels.json"))
    else:
        print(f"vqmon: {devset}/labels.json not found; the dev set is left out", file=sys.stderr)
    summary, ok, out = [], True, {}
    for name, folder, labels in sets:
        key = name.split()[0]
        # Generated splits keep their alerts beside the clips; the dev set folder is read-only.
        alerts = f"{args.alerts_out}.{key}.jsonl" if args.alerts_out else None
        if alerts is None and key != "devset":
            alerts = f"{folder}/alerts.jsonl"
        report, good = _eval_set(args, cfg, folder, labels, alerts)
        ok &= good
        out[key] = report.as_dict()
        if not args.json:
            print(f"== {name}: {folder}\n{report.table()}\n")
        o = report.overall()
        summary.append(
            f"{name:20s} micro-F1 {_num(o['f1'])}  macro-F1 {_num(o['macro_f1'])}  "
            f"FA/clean-hour {_num(o['fa_per_clean_hour'], 1)}  median latency {_num(o['latency_median'], 1)} s"
        )
    print(json.dumps(out, indent=1) if args.json else "\n".join(summary))
    return 0 if ok else EXIT_USER_ERROR


def _eval_audio(args: argparse.Namespace, cfg: Config) -> int:
    """`vqmon eval audio`: the audio checks on generated clips with real sound, train and val
    (cached under --corpus/audio), analysed with the broadcast profile unless --profile says."""
    from monitor.demo.audio_set import write_audio_set

    if args.profile is None:
        args.profile = "broadcast"
    sets = []
    for split in ("train", "val"):
        labels = write_audio_set(Path(args.corpus) / "audio", split, progress=_progress(f"audio {split}"))
        sets.append((f"audio {split}", cfg, labels))
    return _report_generated(args, sets)


def _eval_moved(args: argparse.Namespace, cfg: Config) -> int:
    """`vqmon eval moved`: the moved check on generated fixed-camera clips, train, val and test
    (cached under --corpus/moved), with the cctv profile unless --profile says; PTZ tours apart,
    judged with their number of views declared (checks.moved.known_views)."""
    import copy

    from monitor.demo.moved_set import PTZ_VIEWS, write_moved_set

    if args.profile is None:
        args.profile = "cctv"
    defaults = copy.deepcopy(cfg.defaults)
    defaults.setdefault("checks", {}).setdefault("moved", {})["known_views"] = PTZ_VIEWS
    ptz_cfg = cfg.model_copy(update={"defaults": defaults})
    sets = []
    for split in ("train", "val", "test"):
        labels, ptz = write_moved_set(Path(args.corpus) / "moved", split, progress=_progress(f"moved {split}"))
        sets += [(f"moved {split}", cfg, labels), (f"moved {split} PTZ tours (known_views {PTZ_VIEWS})", ptz_cfg, ptz)]
    return _report_generated(args, sets)


def _report_generated(args: argparse.Namespace, sets: list[tuple[str, Config, Path]]) -> int:
    """One table per generated set, then one summary line each; alerts kept beside the clips."""
    ok, summary, out = True, [], {}
    for title, cfg, labels in sets:
        own = labels.with_name(labels.stem.replace("labels", "alerts") + ".jsonl")
        slug = title.split(" (")[0].replace(" ", "-")
        alerts = f"{args.alerts_out}.{slug}.jsonl" if args.alerts_out else str(own)
        report, good = _eval_set(args, cfg, labels.parent, labels, alerts)
        ok &= good
        out[title] = report.as_dict()
        if not args.json:
            print(f"== {title}: {labels}\n{report.table()}\n")
        o = report.overall()
        f1 = o["f1"] if o["segments"] else None  # a set of negatives only has false alarms to count
        summary.append(
            f"{title:32s} micro-F1 {_num(f1)}  macro-F1 {_num(o['macro_f1'])}  "
            f"false alarms {o['false_alarms']} ({_num(o['fa_per_clean_hour'], 1)} per clean hour)  "
            f"median latency {_num(o['latency_median'], 1)} s"
        )
    print(json.dumps(out, indent=1) if args.json else "\n".join(summary))
    return 0 if ok else EXIT_USER_ERROR


def cmd_export(args: argparse.Namespace) -> int:
    _setup_logging(args.log_level or "info", daemon=False)
    from exporters.clip_export import export_clip

    result = export_clip(
        args.out,
        arch=args.arch,
        weights=args.weights,
        pretrained=args.pretrained,
        random_init=args.random_init,
        int8=args.int8,
        fp16=args.fp16,
        opset=args.opset,
        calibration=args.calibration,
        prompts=args.prompts,
        torch_program=args.torch,
    )
    files = ", ".join(result.manifest["files"])
    print(f"{result.out_dir}: {result.manifest['arch']} ({result.manifest['weights']['source']}): {files}")
    parity = ", ".join(f"{k} {v:.4f}" for k, v in result.manifest["parity_cosine"].items())
    print(f"embedding cosine vs torch (worst of 4 frames): {parity}")
    if result.manifest["random_init"]:
        print("note: random weights; the daemon will score with it but raise no clip_quality alerts from it")
    return 0


def cmd_prompts_embed(args: argparse.Namespace) -> int:
    from monitor.scoring.model_dir import load_manifest
    from monitor.scoring.prompts import PromptSet, load_prompt_set
    from monitor.scoring.text_encoder import TextEncoder, write_embeddings

    _setup_logging(args.log_level or "warning", daemon=False)
    prompts = load_prompt_set(args.prompts)
    manifest = load_manifest(args.model)
    before = PromptSet.from_manifest(manifest)
    emb = TextEncoder(args.model, manifest).embed(prompts)
    write_embeddings(args.model, prompts, emb)
    aspects = ", ".join(f"{a} ({len(p)})" for a, p in prompts.aspects.items())
    print(f"{args.model}: prompt set {prompts.name!r} embedded, {len(prompts.pairs)} pairs: {aspects}")
    if before.learned:
        print(f"note: this replaces the learned prompts ({before.source})")
    return 0


def cmd_prompts_learn(args: argparse.Namespace) -> int:
    _setup_logging(args.log_level or "info", daemon=False)
    from exporters.prompt_learning import LearnSettings, dump, learn_prompts

    settings = LearnSettings(
        context=args.context,
        position=args.position,
        steps=args.steps,
        lr=args.lr,
        loss=args.loss,
        orders=args.orders,
        held_out=args.held_out,
        seed=args.seed,
    )
    result = learn_prompts(
        args.model, args.images, args.out, args.weights, args.pretrained, args.random_init, settings, args.device
    )
    print(dump(result) if args.json else result.report())
    from monitor.scoring.model_dir import load_manifest

    if load_manifest(result.out_dir).get("random_init"):
        print("note: random weights; the SRCCs show the method works, not how well a trained model ranks")
    return 0


def cmd_mute(args: argparse.Namespace) -> int:
    """A maintenance window on a running daemon, through its local HTTP endpoint."""
    import urllib.parse

    from monitor.sinks.base import parse_duration

    try:
        parse_duration(args.duration)
    except ValueError as exc:
        raise VqmonError(str(exc)) from None
    answer = _post_daemon(args, f"/api/mute/{urllib.parse.quote(args.stream)}?for={urllib.parse.quote(args.duration)}")
    seconds = answer["muted_for_s"]
    print(f"{args.stream}: muted for {seconds:g} s" if seconds else f"{args.stream}: mute lifted")
    return 0


def cmd_rebaseline(args: argparse.Namespace) -> int:
    """Accept what a stream shows now as its normal (a camera re-aimed on purpose)."""
    import urllib.parse

    _post_daemon(args, f"/api/rebaseline/{urllib.parse.quote(args.stream)}")
    print(f"{args.stream}: the current view is the stream's normal from now on")
    return 0


def _post_daemon(args: argparse.Namespace, path: str) -> dict[str, Any]:
    """POST to a running daemon's HTTP endpoint (--url, --token); its JSON answer."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{args.url.rstrip('/')}{path}", data=b"", method="POST")
    token = args.token or os.environ.get("VQMON_HTTP_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        raise VqmonError(f"{args.url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise VqmonError(
            f"{args.url}: no vqmon daemon answers there ({getattr(exc, 'reason', exc)}); is it running, "
            "with http enabled (give --url for another port)?"
        ) from None


def cmd_score(args: argparse.Namespace) -> int:
    import cv2

    from monitor.iqa.scorer import IqaScorer
    from monitor.scoring.clip_iqa import ClipIqa, SessionOptions

    _setup_logging(args.log_level or "warning", daemon=False)
    model = ClipIqa(args.model, SessionOptions(device=args.device, precision=args.precision))
    iqa = IqaScorer()  # BRISQUE/NIQE beside the CLIP scores
    rows = []
    for path in args.inputs:
        images = []
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is not None:
            images = [(path, img)]
        else:
            from monitor.analyze import preflight
            from monitor.config import parse_config

            settings = parse_config({}).stream_settings()
            problem = preflight(path, settings)
            if problem:
                raise VqmonError(problem)
            images = list(_video_samples(path, args.every_s))
        scores = model.score([im for _, im in images], args.tiles)
        for (name, im), sc in zip(images, scores, strict=True):
            row: dict[str, Any] = {"input": name, **sc.aspects}
            if sc.worst_tile is not None:
                row["worst_tile"] = sc.worst_tile
            row.update(iqa.score(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)))
            rows.append({**row, "random_init": model.random_init})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        keys = [k for k in rows[0] if k not in ("input", "random_init", "worst_tile")] if rows else []
        tiled = any("worst_tile" in r for r in rows)
        print(f"{'input':<40} " + " ".join(f"{k:>13}" for k in keys) + ("  worst tile (row,col)" if tiled else ""))
        for r in rows:
            tile = r.get("worst_tile")
            where = f"  {tile['quality']:.4g} at ({tile['row']},{tile['col']})" if tile else ""
            print(f"{r['input'][-40:]:<40} " + " ".join(f"{r.get(k, float('nan')):>13.4g}" for k in keys) + where)
        if model.random_init:
            print(f"note: {args.model} has random weights (exported with --random-init): the CLIP scores mean nothing")
    return 0


def _tiles(value: str) -> Any:
    if value in ("auto", "off"):
        return value
    cols, _, rows = value.lower().partition("x")
    if not (cols.isdigit() and rows.isdigit() and 1 <= int(cols) <= 8 and 1 <= int(rows) <= 8):
        raise argparse.ArgumentTypeError(f"{value!r}: auto, off, or COLUMNSxROWS such as 3x2 (1-8 each)")
    return int(cols), int(rows)


def _video_samples(path: str, every_s: float):
    """One frame per ``every_s`` seconds, chosen by the daemon's own sampler."""
    from monitor.capture import open_decoder
    from monitor.config import CaptureConfig, SampleConfig
    from monitor.sampling import Sampler

    dec = open_decoder(path, "file", CaptureConfig(), False)
    sampler = Sampler(SampleConfig(every_s=every_s))
    try:
        for i, raw in enumerate(dec.frames()):
            t = raw.pts_time or 0.0
            if sampler.accept(i, t, raw.keyframe):
                yield f"{path}@{t:.2f}s", raw.full()
    finally:
        dec.close()


def cmd_ask(args: argparse.Namespace) -> int:
    """A follow-up question about a saved alert snapshot (a JPEG path, or an alert id)."""
    from pathlib import Path

    import cv2

    from monitor.alerts.snapshots import sidecars
    from monitor.escalation.client import VlmClient

    cfg = _config(args.config)
    _setup_logging(args.log_level or "warning", daemon=False)
    target = Path(args.target)
    if not target.is_file():
        matches = sorted((Path(cfg.state_dir) / "snapshots").glob(f"*/*-{args.target[:8]}.jpg"))
        if not matches:
            raise VqmonError(
                f"{args.target}: neither an image file nor the id of an alert with a snapshot under "
                f"{cfg.state_dir}/snapshots (give the JPEG path, or --config with the daemon's state_dir)"
            )
        target = matches[-1]
    image = cv2.imread(str(target), cv2.IMREAD_COLOR)
    if image is None:
        raise VqmonError(f"{target}: not a readable image")
    details_file, chat_file = sidecars(target)
    context: dict[str, Any] = {"snapshot": target.name}
    try:
        # The alert's measurements and scores, saved beside the snapshot by the daemon.
        context["alert"] = json.loads(details_file.read_text()) if details_file.is_file() else None
    except (OSError, ValueError):
        context["alert"] = None  # unreadable: ask about the picture alone
    history: list[tuple[str, str]] = []
    if chat_file.is_file() and not args.new:
        try:
            history = [(str(q), str(a)) for q, a in json.loads(chat_file.read_text())]
        except (OSError, ValueError, TypeError):
            history = []  # a damaged conversation starts again
    esc = cfg.escalation
    client = VlmClient(esc.base_url, esc.followup_model or esc.model, esc.api_key_env, esc.timeout_s, esc.image_size)
    answer = client.ask(image, args.question, context, history)
    print(answer)
    try:
        chat_file.write_text(json.dumps([*history, (args.question, answer)]))
    except OSError as exc:
        print(f"vqmon: warning: {chat_file}: conversation not kept ({exc.strerror})", file=sys.stderr)
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    from monitor.demo.corpus import write_corpus

    _setup_logging(args.log_level or "info", daemon=False)
    for split in args.split:
        labels = write_corpus(
            args.out,
            split,
            per_fault=args.per_fault,
            seed=args.seed,
            soak_hours=args.hours,
            jobs=args.jobs,
            progress=_progress(split),
        )
        print(labels)
    return 0


def _progress(what: str):
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{what}: {done}/{total} clips", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return show


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import ensure_demo_clip

    _setup_logging(args.log_level or "info", daemon=False)
    print(ensure_demo_clip(args.output))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vqmon", description="Real-time video stream quality monitor.")
    p.add_argument("--version", action="version", version=f"vqmon {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override the log level")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run the monitoring daemon")
    r.add_argument("--config", "-c", required=True, help="YAML config (see configs/example.yaml)")
    r.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the streams whose name hashes to shard I of N (several daemons, one camera list)",
    )
    r.set_defaults(func=cmd_run)

    a = sub.add_parser("analyze", help="run the pipeline over recorded files; alert events to stdout")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--config", "-c", help="take check/sampling settings from this config's defaults")
    a.add_argument("--profile", choices=profiles(), help="settings profile (default: the config's)")
    a.add_argument("--output", "-o", choices=["jsonl", "table"], default="jsonl")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_analyze)

    mu = sub.add_parser("mute", help="a maintenance window: a running daemon raises no new alert for a stream")
    mu.add_argument("stream")
    mu.add_argument("duration", help="90s, 30m, 2h; 0 lifts the mute")
    mu.add_argument("--url", default="http://127.0.0.1:9310", help="the daemon's HTTP endpoint")
    mu.add_argument("--token", help="its http.token (default: $VQMON_HTTP_TOKEN)")
    mu.set_defaults(func=cmd_mute)

    rb = sub.add_parser(
        "rebaseline", help="a running daemon takes what a stream shows now as its normal (a camera re-aimed on purpose)"
    )
    rb.add_argument("stream")
    rb.add_argument("--url", default="http://127.0.0.1:9310", help="the daemon's HTTP endpoint")
    rb.add_argument("--token", help="its http.token (default: $VQMON_HTTP_TOKEN)")
    rb.set_defaults(func=cmd_rebaseline)

    c = sub.add_parser("check-config", help="validate a config file and show what it resolves to")
    c.add_argument("config")
    c.set_defaults(func=cmd_check_config)

    b = sub.add_parser("bench", help="benchmarks, printed as ratios against a baseline from the same run")
    b.add_argument("what", choices=["decode", "checks", "scorer", "mqtt", "pipeline"])
    b.add_argument("--streams", default="8,16,24", help="pipeline: stream counts to run, e.g. 8,16,24,32")
    b.add_argument("--sample", default="every_s=1", help="pipeline: every_s=S, every_n=N or keyframes")
    b.add_argument("--clip", help="pipeline: the clip each stream loops (default: a generated 720p CCTV-like clip)")
    b.add_argument(
        "--encoding",
        choices=["camera", "x264"],
        default="camera",
        help="pipeline: how the generated clip is encoded: as an IP camera's main stream (no B-frames, "
        "2.8 Mbit/s cap) or with x264's defaults at CRF 20 (3 B-frames, about 3.9 Mbit/s)",
    )
    b.add_argument("--window-s", type=float, default=20.0, help="pipeline: measuring window per stream count")
    b.add_argument("file", nargs="?", help="video file (default: a generated 1080p H.264 clip)")
    b.add_argument("--config", "-c")
    b.add_argument("--repeats", type=int, default=3, help="decode: best of N runs; scorer: median of N rounds")
    b.add_argument("--arch", default="ViT-B-32", help="scorer: open_clip architecture (random weights)")
    b.add_argument(
        "--device",
        choices=["cuda", "cpu"],
        help="scorer: bench the torch backend (runtime torch) on this device instead of the ONNX Runtime rows",
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)

    e = sub.add_parser(
        "eval",
        help="precision/recall/F1 and latency per fault on labelled clips; "
        "with no CLIPS_DIR: the generated train and val splits and the dev set; "
        "`eval iqa [--mos FILE.csv]`: quality scorers against opinion scores (SRCC/KRCC/PLCC/RMSE), "
        "or on graded synthetic distortions of real photographs; `eval audio`: the audio checks on generated "
        "clips with real sound (train and val); `eval moved`: the camera-moved check on generated fixed-camera clips",
    )
    e.add_argument("clips_dir", metavar="CLIPS_DIR", nargs="?", help="a folder of clips, `iqa`, `audio` or `moved`")
    e.add_argument("--mos", help="iqa: CSV of pictures and mean opinion scores (file,mos; KonIQ/KADID as shipped)")
    e.add_argument("--images", help="iqa: the folder the CSV's pictures are in (default: the CSV's)")
    e.add_argument(
        "--scorers", help="iqa: comma-separated, of brisque,niqe,clip_pair,clip,clip_learned (default: all available)"
    )
    e.add_argument("--model", help="iqa: exported CLIP model directory, for the clip scorer")
    e.add_argument("--labels", help="vqmon.labels/1 JSON (e.g. ../shared/devset/labels.json)")
    e.add_argument("--corpus", default="state/corpus", help="where the generated splits are cached")
    e.add_argument("--devset", default="../shared/devset", help="the untouched third set")
    e.add_argument("--config", "-c")
    e.add_argument("--profile", choices=profiles())
    e.add_argument("--tol", type=float, default=2.0, help="seconds after a segment's end a raise still counts")
    e.add_argument("--json", action="store_true")
    e.add_argument("--alerts-out", help="also write the alert events (JSONL) here")
    e.add_argument("--min-f1", type=float, help="exit 1 when micro-F1 is below this")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export", help="export a model for the daemon (needs the export extra)")
    x.add_argument("what", choices=["clip"])
    x.add_argument("--out", required=True, help="model directory to write")
    x.add_argument("--arch", default="ViT-B-32", help="open_clip architecture (ViT-B-32, RN50, MobileCLIP-S1, ...)")
    src = x.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="a local open_clip checkpoint file")
    src.add_argument("--pretrained", help="open_clip's pretrained tag (downloads: needs internet)")
    src.add_argument("--random-init", action="store_true", help="random weights, for tests and benchmarks")
    x.add_argument("--int8", action="store_true", help="also write an int8 encoder (dynamic quantisation)")
    x.add_argument("--calibration", metavar="CLIP", help="with --int8: static quantisation calibrated on this clip")
    x.add_argument("--fp16", action="store_true", help="also write an fp16 encoder (for CUDA/TensorRT)")
    x.add_argument("--opset", type=int, default=18, help="ONNX opset (18 or newer)")
    x.add_argument(
        "--torch",
        action="store_true",
        help="also write the image encoder as a torch.export program, for scoring.runtime: torch (GPU boxes); "
        "export with the torch the daemon will run",
    )
    x.add_argument("--prompts", default="default", help="prompt set to embed: a YAML file or a bundled name (default)")
    x.set_defaults(func=cmd_export)

    pr = sub.add_parser("prompts", help="CLIP-IQA prompt sets: re-embed one into a model directory (no torch)")
    prs = pr.add_subparsers(dest="action", required=True)
    pe = prs.add_parser("embed", help="embed a prompt set with the model's exported text encoder")
    pe.add_argument("--model", required=True, help="model directory from `vqmon export clip`")
    pe.add_argument("--prompts", required=True, help="prompt set: a YAML file (see configs/prompts/clip_iqa.yaml)")
    pe.set_defaults(func=cmd_prompts_embed)
    pl = prs.add_parser(
        "learn", help="learn context vectors for the overall prompts from your own pictures (needs the export extra)"
    )
    pl.add_argument("--model", required=True, help="model directory from `vqmon export clip`")
    pl.add_argument("--images", required=True, metavar="DIR_OR_CLIPS", help="pictures and/or clips of your cameras")
    pl.add_argument("--out", required=True, help="model directory to write (a copy; the same as --model: in place)")
    lsrc = pl.add_mutually_exclusive_group(required=True)
    lsrc.add_argument("--weights", help="the checkpoint the model directory was exported from")
    lsrc.add_argument("--pretrained", help="the open_clip tag it was exported from")
    lsrc.add_argument("--random-init", action="store_true", help="it was exported with --random-init")
    pl.add_argument("--context", type=int, default=4, help="learnable context vectors (default 4)")
    pl.add_argument("--position", choices=["prepend", "append"], default="prepend")
    pl.add_argument("--steps", type=int, default=300)
    pl.add_argument("--lr", type=float, default=2e-3)
    pl.add_argument("--loss", choices=["margin", "listwise", "both"], default="both")
    pl.add_argument(
        "--orders",
        choices=["synthetic", "fixed", "both"],
        default="synthetic",
        help="ground-truth orders: graded degradations of each picture (default), the fixed prompts' scores, or both",
    )
    pl.add_argument("--held-out", type=float, default=0.25, help="share of the pictures/clips kept out to check")
    pl.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where torch runs the text encoder")
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_prompts_learn)

    sc = sub.add_parser("score", help="CLIP-IQA (+ BRISQUE/NIQE) scores of images or video samples")
    sc.add_argument("inputs", nargs="+", metavar="IMAGE_OR_VIDEO")
    sc.add_argument("--model", required=True, help="model directory from `vqmon export clip`")
    sc.add_argument("--device", choices=typing.get_args(Device), default="auto")
    sc.add_argument("--precision", choices=typing.get_args(Precision), default="fp32")
    sc.add_argument("--every-s", type=float, default=5.0, help="videos: one sample per this many seconds")
    sc.add_argument(
        "--tiles", type=_tiles, default="auto", metavar="auto|off|CxR", help="also score tiles (as the daemon does)"
    )
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_score)

    q = sub.add_parser("ask", help="ask the VLM a follow-up question about an alert snapshot")
    q.add_argument("target", metavar="SNAPSHOT_OR_ALERT_ID")
    q.add_argument("question")
    q.add_argument("--config", "-c", help="config with the escalation server and the state_dir")
    q.add_argument("--new", action="store_true", help="start a new conversation about this snapshot")
    q.set_defaults(func=cmd_ask)

    g = sub.add_parser("corpus", help="generate (cached) labelled clip sets: train, val, soak, train_soak")
    g.add_argument("--split", nargs="+", choices=["train", "val", "soak", "train_soak"], default=["train", "val"])
    g.add_argument("--out", default="state/corpus", help="folder; each split goes in its own subfolder")
    g.add_argument(
        "--per-fault",
        type=int,
        default=None,
        help="clips per fault type (and as many clean clips); default 5 for train, 10 for val",
    )
    g.add_argument("--hours", type=float, default=1.0, help="soak: hours of clean footage")
    g.add_argument(
        "--seed",
        type=int,
        default=None,
        help="draw other clips from the split's own footage (a fresh held-out set; give it its own --out)",
    )
    g.add_argument("--jobs", type=int, default=2, help="clips generated in parallel")
    g.set_defaults(func=cmd_corpus)

    d = sub.add_parser("demo", help="generate (once) the demo clip with injected faults; prints its path")
    d.add_argument("--output", default="state/demo/demo.mp4")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, like other Unix tools.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ConfigError as exc:
        print(f"vqmon: config error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except VqmonError as exc:
        print(f"vqmon: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"vqmon: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
