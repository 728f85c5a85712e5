"""Model exporters (need the `export` extra: torch, open_clip). The daemon never imports these."""
