"""Model formats, one module each: read a verified artifact's bytes into a `Model`.

Each module's `load(data, artifact, features, labels)` gets the artifact's bytes after the
loader has checked their sha256, so what is loaded is exactly what was registered.
"""
