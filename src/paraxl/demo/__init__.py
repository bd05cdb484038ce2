"""The README's main job: a short fine-tune of the bundled model with before/after accuracy."""
