"""`make bench-peers`: our server against the serving peers (MLServer, BentoML, KServe,
`mlflow models serve`), each in its own virtualenv, on the same models, in one run."""
