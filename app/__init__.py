"""The HTTP serving app: MLflow's scoring protocol and the Open Inference Protocol (V2),
probes, metrics, one preloaded model.

Layers, each importing only from those below it (checked by `lint-imports`, configured in
pyproject.toml):

    main, gunicorn_conf   the entry points Gunicorn names: the app factory (wiring only)
                          and the server's configuration
    server/               the processes: the Uvicorn worker and the ops listener
    http/                 the ASGI app: routes, middleware, probes, admission, tracing
    runtime/              the model: loading, predicting, batching, warming up
    protocol/ | observability/ | guardrails/
                          bytes to model input and back | metrics, logs, stages, drift |
                          business rules and their vectorised checks (no web framework)
    settings, errors, readiness, mlflow_compat, asgi_compat
                          leaves: configuration, the error answers, the readiness
                          states, the private names of MLflow and pandas, and of
                          Uvicorn, Starlette and FastAPI
    paths                 the paths served (MLflow's and the V2 protocol's), named once
"""

__version__ = "0.1.0"
