"""The runtime, in the order a frame meets it: ``assemble`` builds the stages that need loading
(CLIP scorer, VLM escalation), ``stream`` analyses one stream's frames, ``loop`` runs the
analysis loop over every stream (the Pipeline), ``report`` says how it is going."""

from monitor.runtime.loop import Pipeline
from monitor.runtime.stream import StreamAnalyzer, StreamSpec

__all__ = ["Pipeline", "StreamAnalyzer", "StreamSpec"]
