"""The processes: Gunicorn's worker and master-side listener.

The Uvicorn worker with its protocol hardening (`worker`) and the ops listener that answers
probes and /metrics from Gunicorn's master (`ops_server`). `app.gunicorn_conf` configures
them; `app.main` builds the app they serve.
"""
