"""No-reference picture quality scores (BRISQUE, NIQE): lower is better for both."""
