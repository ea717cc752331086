"""Reaching an MLflow registry, shared by the server (app) and the commands (registry_scripts).

Neither package imports the other: both import this one. It holds the bounded HTTP
retries, the redaction of credentials from anything written out, and the resolve-and-
download of a model version, so the image's model stage needs only this package and the
export command.
"""
