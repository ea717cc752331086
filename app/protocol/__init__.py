"""MLflow's scoring protocol: request bytes to model input, model output to response bytes.

Parsing each content type within the request's cost budget (`parsing`, `budget`,
`json_outline`), checking values against the signature (`validation`), building the frame
the model gets (`frames`) and encoding predictions (`encoding`). Pure functions of bytes and
the model's contract: no HTTP framework, no model call, no metrics.
"""
