"""CLIP-IQA antonym prompt pairs: (positive, negative). The score of a pair is the softmax
probability of the positive prompt; `quality` is the overall score, the rest are aspects."""

PROMPT_PAIRS: dict[str, tuple[str, str]] = {
    "quality": ("Good photo.", "Bad photo."),
    "sharp": ("Sharp photo.", "Blurry photo."),
    "clean": ("Clean photo.", "Noisy photo."),
    "bright": ("Bright photo.", "Dark photo."),
    "colorful": ("Colorful photo.", "Dull photo."),
    "natural": ("Natural photo.", "Synthetic photo."),
    "artifact_free": ("Artifact-free photo.", "Compressed photo."),
}
LOGIT_SCALE = 100.0
MANIFEST_SCHEMA = "vqmon.clip-model/1"
