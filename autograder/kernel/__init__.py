"""The project kernel: an IPython kernel with the offline dataset shim installed.

Outside kernels started by the project nothing is patched: the shim is installed only by
``python -m autograder.kernel``, which is the command :class:`ProjectKernelManager` launches.
"""
