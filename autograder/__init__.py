"""Autograder for neural-network homework in Jupyter notebooks."""

__version__ = "0.1.0"
