"""Batch scoring: a whole table scored with one registry version, as /invocations scores it.

`python -m batch_scoring --model models:/NAME/Production --input in/ --output out/`
resolves the model to one version at start and scores every row with it. Modules:
`inputs` (the files to read, in chunks), `refusers` (rows refused before predict, and
why), `chunks` (one chunk: refuse, build the model input as the server does, predict,
encode as the server answers), `output` (a staging directory committed with its manifest
by one rename), `local` and `spark` (the engines), `run` (the run from start to manifest),
`__main__` (the command line).
"""
