"""The composition root and the runners built on it (headless; the GUI later)."""
