"""Shared logic behind the python-base nox sessions: matrix, engine, upstream, images, audit."""
