"""A real RTSP server for the tests (GStreamer's gst-rtsp-server), run by the *system* python3.

    /usr/bin/python3 tests/rtsp_server.py PORT [--clip FILE.mp4] [--path /live]

Serves a live test pattern (H.264) or an MP4 clip on rtsp://127.0.0.1:PORT/PATH and prints
"READY rtsp://..." once it listens. Runs until killed.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LIVE = (
    "( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=320,height=240,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 )"
)
CLIP = "( filesrc location={clip} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )"
# With --audio: a live sine beside the picture, as an encoder's programme sound (Opus over RTP).
SOUND = (
    " audiotestsrc is-live=true wave=sine freq={freq} volume={volume} ! audio/x-raw,rate=48000,channels=2 "
    "! audioconvert ! opusenc ! rtpopuspay name=pay1 pt=97 "
)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--clip")
    ap.add_argument("--path", default="/live")
    ap.add_argument("--pattern", default="ball")
    ap.add_argument("--audio", type=float, help="live only: a 1 kHz sine track at this amplitude (1.0 = full scale)")
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    launch = CLIP.format(clip=args.clip) if args.clip else LIVE.format(pattern=args.pattern)
    if args.audio is not None and not args.clip:
        launch = launch[:-1] + SOUND.format(freq=1000, volume=args.audio) + ")"
    factory.set_launch(launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"FAILED to bind 127.0.0.1:{args.port}", flush=True)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
