"""The grading checks: a pytest plugin, the artifacts it serves, and the scoring rule."""
